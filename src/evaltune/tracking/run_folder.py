"""The run folder: the source of truth of a run, written so that a crash loses nothing.

runs/<name>/config.json, events.jsonl (append-only), state.json (atomic), rounds/<n>/...,
outbox.jsonl (what remote sinks have not received yet), summary.json (written last: its
presence means the run finished).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from evaltune.errors import UsageError
from evaltune.tracking.checkpoints import drop_trainer_state
from evaltune.tracking.run_state import RunState


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file, fsync it, and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` atomically with `data` as indented JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


def append_json_line(path: Path, data: Any, *, sync: bool = True) -> None:
    """Append `data` as one JSON line to `path`, flushed and (with `sync`) fsynced, so a killed
    process keeps every line it wrote."""
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(data, default=str) + "\n")
        f.flush()
        if sync:
            os.fsync(f.fileno())


class RunFolder:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.name = self.root.name

    @classmethod
    def create(cls, output_dir: Path, run_name: str | None) -> "RunFolder":
        """Make a new, empty run folder; refuses to reuse an existing one."""
        # Absolute, so that the paths in events and the outbox still hold for `evaltune sync` run elsewhere.
        output_dir = Path(output_dir).absolute()
        name = run_name or time.strftime("%Y%m%d-%H%M%S")
        root = output_dir / name
        if run_name is None:
            n = 1
            while root.exists():  # two runs started in the same second
                n += 1
                root = output_dir / f"{name}-{n}"
        elif root.exists():
            raise UsageError(f"run folder {root} already exists; choose another run_name or remove it.")
        (root / "rounds").mkdir(parents=True)
        return cls(root)

    @classmethod
    def open(cls, root: Path) -> "RunFolder":
        """An existing run folder, for resuming; UsageError when it is not one."""
        root = Path(root).absolute()
        if not (root / "config.json").is_file():
            raise UsageError(f"{root} is not a run folder (no config.json); pass the folder a run created.")
        return cls(root)

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    def round_dir(self, round_no: int) -> Path:
        return self.root / "rounds" / str(round_no)

    def eval_dir(self, round_no: int) -> Path:
        return self.round_dir(round_no) / "eval"

    def write_config(self, config_dict: dict) -> None:
        write_json_atomic(self.root / "config.json", config_dict)

    @property
    def partial_dir(self) -> Path:
        """The latest mid-round checkpoint (one at a time; replaced as training goes on)."""
        return self.root / "partial"

    def read_config(self) -> dict:
        return json.loads((self.root / "config.json").read_text())

    def write_state(self, state: RunState) -> None:
        write_json_atomic(self.root / "state.json", state.to_dict())

    def read_state(self) -> RunState | None:
        path = self.root / "state.json"
        return RunState.from_dict(json.loads(path.read_text())) if path.is_file() else None

    def prune_trainer_states(self, keep: set[int]) -> None:
        """Delete optimizer states of every round not in `keep` (adapters are always kept)."""
        for round_dir in (self.root / "rounds").iterdir():
            if round_dir.name.isdigit() and int(round_dir.name) not in keep:
                drop_trainer_state(round_dir)

    @property
    def lock_path(self) -> Path:
        return self.root / "run.lock"

    def running_pid(self) -> int | None:
        """The process id in run.lock when that process is alive (the run is going on), else None."""
        try:
            pid = int(self.lock_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid and _alive(pid) else None

    def acquire(self) -> None:
        """Mark the folder as being worked on by this process; refuse if another live one is."""
        pid = self.running_pid()
        if pid and pid != os.getpid():
            raise UsageError(f"{self.root} is being run by process {pid}; wait for it or stop it first.")
        self.lock_path.write_text(str(os.getpid()))

    def release(self) -> None:
        self.lock_path.unlink(missing_ok=True)

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.root / "summary.json", summary)

    @property
    def outbox_path(self) -> Path:
        return self.root / "outbox.jsonl"

    def append_event(self, event: dict) -> None:
        append_json_line(self.events_path, event)

    def read_events(self) -> list[dict]:
        if not self.events_path.exists():
            return []
        events = []
        for line in self.events_path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write; every complete line is kept
        return events


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
