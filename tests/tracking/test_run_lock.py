"""The run lock: one process at a time works on a run folder, and a dead one never holds it.

Contenders are fresh interpreters that each try the lock on the same line of stdin; a holder is killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from inspect_tinker.errors import UsageError
from inspect_tinker.tracking import RunFolder

CONTENDERS, TRIALS = 8, 20

# One contender: for each run folder read from stdin it tries the lock and says whether it got
# it, then holds it until told to let go, so that every contender tries while the winner holds.
# The contenders are fresh interpreters, not forks of pytest: forking a process with threads
# running (the tinker SDK's, Chromium's driver, the local servers' clients) can leave the child
# stuck on a lock some thread held at the fork, and once a contender hung there for ever.
CONTEND = """
import sys
from inspect_tinker.errors import UsageError
from inspect_tinker.tracking import RunFolder
for root in sys.stdin:
    folder = RunFolder(root.strip())
    try:
        folder.acquire()
        won = True
    except UsageError:
        won = False
    print("won" if won else "lost", flush=True)
    sys.stdin.readline()
    if won:
        folder.release()
    print("released", flush=True)
"""


def test_of_many_processes_taking_a_run_at_once_exactly_one_gets_it(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", CONTEND], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(CONTENDERS)]
    try:
        for trial in range(TRIALS):
            root = tmp_path / f"run-{trial}"
            root.mkdir()
            for proc in procs:  # all at once: each contender is blocked reading, and wakes on its line
                proc.stdin.write(f"{root}\n")
                proc.stdin.flush()
            results = [proc.stdout.readline() for proc in procs]
            assert results.count("won\n") == 1, f"trial {trial}: {results}"
            for proc in procs:
                proc.stdin.write("release\n")
                proc.stdin.flush()
            assert [proc.stdout.readline() for proc in procs] == ["released\n"] * CONTENDERS
            assert not (root / "run.lock").exists()  # the winner's release removed it
    finally:
        for proc in procs:
            proc.stdin.close()
        for proc in procs:
            assert proc.wait(timeout=300) == 0


def test_only_the_holder_releases_the_lock(tmp_path):
    holder, other = RunFolder(tmp_path), RunFolder(tmp_path)
    assert holder.acquire() is None
    other.release()  # holds nothing: gives nothing back
    assert (tmp_path / "run.lock").read_text() == str(os.getpid())
    assert other.running_pid() == os.getpid()
    holder.release()
    assert other.running_pid() is None and not (tmp_path / "run.lock").exists()


def test_a_pid_left_in_run_lock_is_not_running_even_when_that_pid_is_alive(tmp_path):
    # A killed holder's pid, reused by a live process (here: this test's own).
    (tmp_path / "run.lock").write_text(str(os.getpid()))
    folder = RunFolder(tmp_path)
    assert folder.running_pid() is None
    assert folder.acquire() == os.getpid()  # taken over; the dead holder's pid is reported
    folder.release()


def test_a_holder_killed_with_sigkill_leaves_the_lock_free_and_names_itself(tmp_path):
    hold = (
        "import sys, time; from inspect_tinker.tracking import RunFolder; "
        f"RunFolder({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "held\n"
        folder = RunFolder(tmp_path)
        assert folder.running_pid() == proc.pid
        try:
            folder.acquire()
        except UsageError as err:
            assert f"is being run by process {proc.pid}" in str(err)
        else:
            raise AssertionError("a held lock was taken")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (tmp_path / "run.lock").is_file() and folder.running_pid() is None
    assert folder.acquire() == proc.pid
    folder.release()
