"""events.jsonl stays whole through a full disk and a kill mid-write, and no event number repeats.

The full disk is a real one: a small tmpfs (tests/conftest.py `small_disk`) filled to the last byte.
"""

from __future__ import annotations

import json
import os

import pytest

from inspect_tinker.tracking import EventLog, RunFolder


def lines_of(folder: RunFolder) -> list[dict]:
    """Every line of events.jsonl, parsed: fails on a torn or merged line."""
    return [json.loads(line) for line in folder.events_path.read_text().splitlines()]


def test_a_write_the_full_disk_broke_off_leaves_no_fragment_for_the_next_event(small_disk):
    folder = RunFolder(small_disk.path / "run")
    folder.root.mkdir()
    log = EventLog(folder)
    log.emit("step", step=1)
    filler = small_disk.fill()
    # The last page of events.jsonl has room for a few events; the one that does not fit
    # gets part of its bytes written before the disk refuses the rest.
    with pytest.raises(OSError):
        for step in range(2, 100):
            log.emit("step", step=step, padding="x" * 200)
    assert folder.events_path.read_bytes().endswith(b"\n")
    written = lines_of(folder)
    filler.unlink()
    log.emit("error", message="No space left on device")
    resumed = EventLog(folder)  # the next process
    resumed.emit("run_started", resumed=True)
    after = lines_of(folder)
    assert after[: len(written)] == written and [e["event"] for e in after[len(written):]] == ["error", "alert", "run_started"]
    seqs = [e["seq"] for e in after]
    assert seqs == sorted(set(seqs))  # increasing, none repeated
    assert seqs[len(written)] == written[-1]["seq"] + 2  # the failed event kept its number (its sinks never saw it)
    assert len({e["id"] for e in after}) == len(after)


def test_a_line_torn_by_a_kill_is_cut_off_kept_in_an_event_and_its_number_never_reused(tmp_path):
    folder = RunFolder(tmp_path)
    log = EventLog(folder)
    for step in range(1, 4):
        log.emit("step", step=step)
    torn = json.dumps({"event": "alert", "seq": 4, "id": f"{log.run_id}:4", "alert": "run_crashed"})[:50]
    with folder.events_path.open("a") as f:  # what a kill in the middle of the write leaves
        f.write(torn)
    assert "\"seq\": 4" in torn  # the torn event had its number

    resumed = EventLog(folder)
    resumed.emit("run_started", resumed=True)
    events = lines_of(folder)
    assert [e["event"] for e in events] == ["step", "step", "step", "events_repaired", "run_started"]
    repaired = events[3]
    assert repaired["fragment"] == torn and repaired["fragment_bytes"] == len(torn)
    assert [e["seq"] for e in events] == [1, 2, 3, 5, 6]
    assert os.path.getsize(folder.events_path) == sum(len(json.dumps(e)) + 1 for e in events)


@pytest.mark.parametrize("lost", ["the last lines", "every line"])
def test_lost_lines_of_the_event_log_never_make_a_later_event_reuse_a_number_or_the_run_id(tmp_path, lost):
    folder = RunFolder(tmp_path)
    log = EventLog(folder)
    for step in range(1, 6):
        log.emit("step", step=step)
    lines = folder.events_path.read_text().splitlines(keepends=True)
    folder.events_path.write_text("".join(lines[:2] if lost == "the last lines" else []))

    resumed = EventLog(folder)
    event = resumed.emit("run_started", resumed=True)
    assert (event["seq"], event["id"], event["run_id"]) == (6, f"{log.run_id}:6", log.run_id)
