"""`inspect-tinker dev-server`: it says where it serves, serves, and leaves nothing behind when stopped."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspect_tinker.provider.tinker_server import free_port, serves_model
from inspect_tinker.provider.tinker_server.environment import ensure_environment, environment_dir

pytestmark = pytest.mark.tinker_server


def descendants(pid: int) -> set[int]:
    """The processes below `pid`, read from /proc (children, their children, ...)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent has not collected it yet


def wait_until_gone(pids: set[int], timeout: float = 120) -> set[int]:
    """The pids still alive after waiting up to `timeout` s for all of them to end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return {p for p in pids if alive(p)}


def _as_in_a_terminal() -> None:
    # A suite started in the background by a script (`.ci/run &`) passes SIGINT on ignored, and
    # Python then never turns it into KeyboardInterrupt; a person's terminal does not ignore it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_dev_server(tmp_path: Path) -> tuple[subprocess.Popen, list[str], str]:
    """`inspect-tinker dev-server --model tiny`, read up to the line that says how to stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspect_tinker", "dev-server", "--model", "tiny", "--port", str(free_port()),
         "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_as_in_a_terminal,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith("Stop it:"):
            break
    assert lines and lines[-1].startswith("Stop it:"), "\n".join(lines)
    url = re.search(r"base URL:\s+(\S+)", "\n".join(lines)).group(1)
    return proc, lines, url


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["kill -TERM", "Ctrl-C"])
def test_the_dev_server_says_how_to_use_it_serves_and_a_stop_signal_ends_all_its_processes(tmp_path, stop):
    proc, lines, url = start_dev_server(tmp_path)
    text = "\n".join(lines)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    assert "base_model:  tiny-llama" in text and f"tinker_base_url: {url}" in text and "demo --local-server" in text
    assert f"kill -TERM {proc.pid}" in text
    assert serves_model(url, "tiny-llama")  # ready means the engine holds the model, not only HTTP up
    server_processes = descendants(proc.pid)
    assert len(server_processes) >= 2  # the API and its engine

    proc.send_signal(stop)
    assert proc.wait(timeout=120) == 0
    assert "Stopped." in proc.stdout.read()
    assert wait_until_gone(server_processes) == set()
    assert not serves_model(url, "tiny-llama")


def test_a_dev_server_killed_outright_takes_its_server_with_it(tmp_path):
    proc, _, url = start_dev_server(tmp_path)
    server_processes = descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)  # no handler runs: the server processes notice their parent's death
    proc.wait()
    assert wait_until_gone(server_processes) == set()
    assert not serves_model(url, "tiny-llama")


def test_the_server_runs_in_its_own_environment_which_is_reused(tiny_tinker_server):
    python = ensure_environment(say=pytest.fail)  # installed already by the fixture: nothing to say
    assert python == environment_dir() / "bin" / "python" and python.is_file()
    prefix = subprocess.run([str(python), "-c", "import skyrl, sys; print(sys.prefix)"], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert Path(prefix) == environment_dir()
    assert Path(sys.prefix) != environment_dir()
    assert importlib.util.find_spec("skyrl") is None  # never in inspect-tinker's own environment
    assert os.path.commonpath([str(python), sys.prefix]) != sys.prefix


def test_an_environment_is_installed_once_per_requirement_list_and_an_interrupted_one_again(tmp_path, monkeypatch):
    import inspect_tinker.provider.tinker_server.environment as environment

    monkeypatch.setenv("INSPECT_TINKER_CACHE", str(tmp_path / "cache"))
    said = []
    python = environment.ensure_environment("six==1.16.0\n", say=said.append)
    assert said and str(tmp_path / "cache") in said[0]
    assert subprocess.run([str(python), "-c", "import six"]).returncode == 0

    with monkeypatch.context() as patch:
        patch.setattr(environment, "_run", lambda command, doing: pytest.fail(f"ran pip: {doing}"))
        assert environment.ensure_environment("six==1.16.0\n", say=said.append) == python  # reused
    assert len(said) == 1
    assert environment.environment_dir("six==1.15.0\n") != python.parent.parent  # another list, another one

    (python.parent.parent / ".complete").unlink()  # as if the install had been killed half-way
    assert environment.ensure_environment("six==1.16.0\n", say=said.append) == python
    assert len(said) == 2 and subprocess.run([str(python), "-c", "import six"]).returncode == 0
