"""The files a run reads and their sha256 hashes (the run folder's inputs.json), so that a resumed
run can tell when its data changed under it.

A resumed round trains on whatever the training file holds when it resumes: a file edited
between a kill and the resume would make round 2 train on other text than round 1 did, with
nothing in the run folder to say so. Hashes, not modification times: a copy or a checkout
changes the time and keeps the content, and an edit within the same second keeps the time.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class InputFile:
    """One file a run reads: the key that names it (`train_file`, `eval_tasks[0]`), its path, its hash."""

    key: str
    path: str
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ChangedInput:
    """A file whose content differs from what the run recorded when it read it first."""

    key: str
    path: str
    recorded: str
    current: str

    def to_dict(self) -> dict:
        return asdict(self)


def hash_inputs(files: dict[str, Path]) -> list[InputFile]:
    """The sha256 of each file of `files` (key -> path), read in 1 MiB chunks."""
    hashed = []
    for key, path in files.items():
        digest = hashlib.sha256()
        with Path(path).open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        hashed.append(InputFile(key, str(path), digest.hexdigest()))
    return hashed


def changed_inputs(recorded: list[dict], current: list[InputFile]) -> list[ChangedInput]:
    """The files of `current` whose hash differs from the one `recorded` (inputs.json) holds for the
    same path. A path only one side has is a changed configuration (config.json tells those), not
    changed data."""
    before = {entry["path"]: entry["sha256"] for entry in recorded}
    return [ChangedInput(f.key, f.path, before[f.path], f.sha256)
            for f in current if f.path in before and before[f.path] != f.sha256]


def changed_inputs_message(run_dir: Path, changed: list[ChangedInput]) -> str:
    """The one message that refuses a resume over `changed`, saying what to do."""
    files = "; ".join(f"{c.key} {c.path} (sha256 {c.recorded[:12]} when the run read it, now {c.current[:12]})"
                      for c in changed)
    return (
        f"the run in {run_dir} read different data than these files now hold: {files}. Resuming would train and "
        "evaluate on other data than the earlier rounds did. Restore the file (its hash is in inputs.json), or "
        "pass --allow-changed-inputs to go on with the new contents (recorded as an inputs_changed event)."
    )
