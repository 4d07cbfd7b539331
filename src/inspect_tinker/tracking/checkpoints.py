"""Durable checkpoints: written under a temporary name, sealed with a checksum manifest,
fsynced, then renamed. A checkpoint whose files do not match its manifest is torn and is
never loaded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())


def write_checkpoint(backend, directory: Path) -> str:
    """Save `backend`'s adapter and trainer state as `directory`, atomically.

    Returns the checkpoint's address as the backend reports it (a path inside `directory`
    or a service URI). An existing `directory` is replaced only once the new one is sealed.
    """
    directory = Path(directory)
    # The backend writes into a folder of the final name (a service names its checkpoint after
    # it), inside a staging folder that a crash leaves behind without harm.
    staging = directory.with_name(f".tmp-{directory.name}")
    shutil.rmtree(staging, ignore_errors=True)
    tmp = staging / directory.name
    tmp.mkdir(parents=True)
    address = backend.save_checkpoint(tmp)
    files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / MANIFEST).write_text(json.dumps({"files": files, "address": _relative(address, tmp)}, indent=1))
    _fsync_tree(tmp)
    if directory.exists():
        old = directory.with_name(f".old-{directory.name}")
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old)
    else:
        tmp.rename(directory)
    shutil.rmtree(staging)
    return checkpoint_address(directory)


def _relative(address: str, root: Path) -> str:
    try:
        return str(Path(address).relative_to(root))
    except ValueError:  # a service URI such as tinker://...
        return address


def checkpoint_address(directory: Path) -> str:
    """The address recorded when `directory` was sealed, made absolute for local paths."""
    address = json.loads((Path(directory) / MANIFEST).read_text())["address"]
    return address if "://" in address else str(Path(directory) / address)


def verify_checkpoint(directory: Path, parts: tuple[str, ...] = ("adapter", "trainer")) -> bool:
    """True when `directory` is sealed and every file under `parts` matches its checksum."""
    manifest = Path(directory) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        files = json.loads(manifest.read_text())["files"]
    except (json.JSONDecodeError, KeyError):
        return False
    wanted = {name: digest for name, digest in files.items() if name.split("/", 1)[0] in parts}
    return all((Path(directory) / n).is_file() and _sha256(Path(directory) / n) == d for n, d in wanted.items())


def drop_trainer_state(directory: Path) -> None:
    """Free the optimizer state of a checkpoint that will never be resumed from."""
    shutil.rmtree(Path(directory) / "trainer", ignore_errors=True)
