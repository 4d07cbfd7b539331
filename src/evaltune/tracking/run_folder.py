"""The run folder: the source of truth of a run, written so that a crash loses nothing.

runs/<name>/config.json, events.jsonl (append-only), state.json (atomic), rounds/<n>/...,
summary.json (written last: its presence means the run finished).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file, fsync it, and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunFolder:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.name = self.root.name

    @classmethod
    def create(cls, output_dir: Path, run_name: str | None) -> "RunFolder":
        """Make a new, empty run folder; refuses to reuse an existing one."""
        output_dir = Path(output_dir)
        name = run_name or time.strftime("%Y%m%d-%H%M%S")
        root = output_dir / name
        if run_name is None:
            n = 1
            while root.exists():  # two runs started in the same second
                n += 1
                root = output_dir / f"{name}-{n}"
        elif root.exists():
            from evaltune.errors import UsageError

            raise UsageError(f"run folder {root} already exists; choose another run_name or remove it.")
        (root / "rounds").mkdir(parents=True)
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

    def write_state(self, state: dict) -> None:
        write_json_atomic(self.root / "state.json", state)

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.root / "summary.json", summary)

    def append_event(self, event: dict) -> None:
        # One line per event, flushed and synced: a killed run keeps every event it emitted.
        with self.events_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(event, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_events(self) -> list[dict]:
        if not self.events_path.exists():
            return []
        return [json.loads(line) for line in self.events_path.read_text().splitlines() if line.strip()]
