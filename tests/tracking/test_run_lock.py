"""The run lock: one process at a time works on a run folder, and a dead one never holds it.

Contenders are real processes started together behind a barrier; a holder is killed with SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys

from inspect_tinker.errors import UsageError
from inspect_tinker.tracking import RunFolder

CONTENDERS, TRIALS = 8, 20


def _contend(root, start, tried, wins) -> None:
    folder = RunFolder(root)
    start.wait()
    try:
        folder.acquire()
    except UsageError:
        won = False
    else:
        won = True
    wins.put(won)
    tried.wait()  # the winner holds the lock until every contender has tried
    folder.release()


def test_of_many_processes_taking_a_run_at_once_exactly_one_gets_it(tmp_path):
    context = multiprocessing.get_context("fork")
    for trial in range(TRIALS):
        root = tmp_path / f"run-{trial}"
        root.mkdir()
        start, tried, wins = context.Barrier(CONTENDERS), context.Barrier(CONTENDERS), context.Queue()
        procs = [context.Process(target=_contend, args=(root, start, tried, wins)) for _ in range(CONTENDERS)]
        for proc in procs:
            proc.start()
        results = [wins.get(timeout=300) for _ in procs]
        for proc in procs:
            proc.join(timeout=300)
            assert proc.exitcode == 0
        assert results.count(True) == 1, f"trial {trial}: {results.count(True)} processes got the lock"
        assert not (root / "run.lock").exists()  # the winner's release removed it


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
