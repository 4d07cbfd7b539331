"""The run folder: the source of truth of a run, written so that a crash loses nothing.

runs/<name>/config.json, events.jsonl (append-only), state.json (atomic), rounds/<n>/...,
outbox.jsonl (what remote sinks have not received yet), summary.json (written last: its
presence means the run finished).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
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


def make_folder(path: Path) -> None:
    """Create `path` and its parents (an existing folder is fine); UsageError saying why not when
    the place cannot hold it: a file in the way, a read-only or foreign folder, a full disk."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        existing = next(p for p in (path, *path.parents) if p.exists())
        reason = f"{existing} is a file" if not existing.is_dir() else f"{err.strerror}: {err.filename or path}"
        raise UsageError(
            f"cannot create the folder {path} ({reason}); set output_dir (--output-dir) to a folder you can write to."
        ) from None


# Writers that report a full disk only in words: torch's checkpoint writer ("unexpected pos",
# "file write failed"), and Inspect, whose failed evaluation carries the OSError as text.
_WRITE_FAILED = ("unexpected pos", "file write failed", "No space left on device", "Disk quota exceeded")
_ALMOST_FULL_BYTES = 1 << 20  # what a failed write leaves; a disk with more did not fail for space


def disk_full(error: BaseException, path: Path) -> str | None:
    """When `error` comes from the disk holding `path` being full, a sentence saying so; else None.

    Full means an ENOSPC or EDQUOT OSError in the error's chain, or a write failure reported in
    words (see _WRITE_FAILED) while that disk has less than 1 MiB left.
    """
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    out_of_space = any(isinstance(c, OSError) and c.errno in (errno.ENOSPC, errno.EDQUOT) for c in chain)
    if not out_of_space and not any(words in str(c) for c in chain for words in _WRITE_FAILED):
        return None
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        free = 0
    if not out_of_space and free >= _ALMOST_FULL_BYTES:
        return None
    return f"the disk holding {path} is full ({free // 1024} KiB free)"


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
        elif root.exists() and cls(root).never_started() is not None:
            shutil.rmtree(root)  # a start that bad input stopped left nothing durable: this run replaces it
        elif root.exists():
            raise UsageError(f"run folder {root} already exists; choose another run_name or remove it.")
        make_folder(root / "rounds")
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
        """config.json's content; UsageError naming the file when it is damaged."""
        return self._read_json("config.json", "the configuration the run was started with")

    def _read_json(self, name: str, what: str) -> Any:
        path = self.root / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UsageError(
                f"{path} is damaged ({err.__class__.__name__}: {err}); it should hold {what}. Restore it from a "
                "backup, or start a new run."
            ) from None

    def write_state(self, state: RunState) -> None:
        write_json_atomic(self.root / "state.json", state.to_dict())

    def read_state(self) -> RunState | None:
        """state.json's RunState, None when there is none yet; UsageError naming the file when it is damaged."""
        if not (self.root / "state.json").is_file():
            return None
        data = self._read_json("state.json", "the run's position (round, phase, history)")
        try:
            return RunState.from_dict(data)
        except (TypeError, KeyError, AttributeError) as err:
            raise UsageError(
                f"{self.root / 'state.json'} is damaged (not the run's position: {err}). Restore it from a backup, "
                "or start a new run."
            ) from None

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

    def read_summary(self) -> dict | None:
        """summary.json's content, None before the run finished; UsageError naming the file when it is damaged."""
        if not (self.root / "summary.json").is_file():
            return None
        return self._read_json("summary.json", "the finished run's outcome")

    @property
    def outbox_path(self) -> Path:
        return self.root / "outbox.jsonl"

    def append_event(self, event: dict) -> None:
        append_json_line(self.events_path, event)

    def never_started(self) -> str | None:
        """The message of the usage error that stopped this run before it did anything durable
        (its `not_started` event), or None when the run started."""
        sessions = [e for e in self.read_events() if e.get("event") in ("run_started", "not_started")]
        return sessions[-1].get("message", "") if sessions and sessions[-1]["event"] == "not_started" else None

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
