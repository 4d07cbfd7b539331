"""The local Tinker server's own virtualenv, installed on first use and cached.

SkyRL and its JAX stack (about 2.3 GB) never enter inspect-tinker's environment: they go into a
virtualenv of their own under the user cache (`$INSPECT_TINKER_CACHE`, else
`$XDG_CACHE_HOME/inspect-tinker`, else `~/.cache/inspect-tinker`), in `tinker-server/<key>/`, where the key
is a hash of requirements.txt and the Python version. A changed requirement list therefore
gets a new environment, and a finished one is reused without asking pip anything.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

from inspect_tinker.errors import UsageError
from inspect_tinker.provider.base_model import cache_root

REQUIREMENTS = files("inspect_tinker.provider.tinker_server") / "requirements.txt"
_COMPLETE = ".complete"  # written last: a folder without it is an interrupted install


def requirements_text() -> str:
    return REQUIREMENTS.read_text(encoding="utf-8")


def environment_key(requirements: str) -> str:
    """What names an environment: its requirement list and the Python it is built with."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return hashlib.sha256(f"python {python}\n{requirements}".encode()).hexdigest()[:16]


def environment_dir(requirements: str | None = None, kind: str = "tinker-server") -> Path:
    """The folder of the virtualenv for `requirements` (default: the server's own list);
    `kind` names the family of environments (the benchmark's peer has one of its own)."""
    requirements = requirements_text() if requirements is None else requirements
    return cache_root() / kind / environment_key(requirements) / "venv"


def ensure_environment(requirements: str | None = None, say=print, kind: str = "tinker-server") -> Path:
    """The Python of a finished virtualenv holding `requirements`, installed first if needed.

    Installs with pip, every package pinned and without dependency resolution (see
    requirements.txt). Concurrent callers wait for one install under a file lock; an install
    interrupted half-way is removed and done again. Raises UsageError when pip fails.
    """
    requirements = requirements_text() if requirements is None else requirements
    venv = environment_dir(requirements, kind)
    python = venv / "bin" / "python"
    if (venv / _COMPLETE).is_file():
        return python
    with _install_lock(venv.parent / "install.lock"):
        if (venv / _COMPLETE).is_file():  # another process installed it while we waited
            return python
        say(f"Installing the {kind} environment into {venv} (first use only; a few minutes)...")
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)], "creating the virtualenv")
        listed = venv.parent / "requirements.txt"
        listed.write_text(requirements, encoding="utf-8")
        _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-requires-python",
              "--only-binary", ":all:", "--requirement", str(listed)], "installing its packages")
        (venv / _COMPLETE).write_text("")
    return python


@contextmanager
def _install_lock(path: Path):
    # flock rather than a lock file's existence: the kernel drops it when its holder dies.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run(command: list[str], doing: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-12:]
        raise UsageError(
            f"installing an environment failed while {doing} (exit {done.returncode}):\n  "
            + "\n  ".join(detail)
            + "\nCheck that PyPI can be reached; the next start tries again."
        )
