"""Delivery to remote sinks: retries, permanent failures, the bounded flush, and the outbox
journal that outlives a crash. Events are emitted by a real EventLog into a real run folder and
delivered to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time

from inspect_tinker.tracking.delivery import Delivery, Outbox, OutboxEntry
from inspect_tinker.tracking.events import EventLog
from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.tracking.webhooks import WebhookDestination


# A flush ends as soon as everything is delivered, so a long one costs nothing where delivery works,
# and keeps a slow (loaded) machine from leaving deliveries in the outbox.
def webhook_delivery(receiver, *, flush_seconds=300.0, timeout_seconds=60.0, alerts=("run_finished",)):
    hook = WebhookDestination("TEAM_HOOK", f"{receiver.url}/hooks/T0KEN", list(alerts), timeout_seconds)
    return Delivery([hook], max_backoff_seconds=0.2, flush_seconds=flush_seconds)


def finish_a_run(events: EventLog, bar_met: bool = True) -> None:
    events.emit("run_started", run_dir=str(events.folder.root), config={})
    events.emit(
        "run_finished", run_dir=str(events.folder.root), bar_met=bar_met, best_score=0.8, best_round=2,
        threshold=0.75, rounds_run=2, best_adapter="a",
    )


def test_a_5xx_answer_is_retried_until_the_receiver_accepts_it_once(tmp_path, receiver):
    receiver.start().fail_next.extend([503, 502])
    folder = RunFolder.create(tmp_path, "r")
    events = EventLog(folder, [webhook_delivery(receiver).start(folder)])
    finish_a_run(events)
    events.close()
    assert receiver.attempts == 3 and len(receiver.accepted) == 1 and receiver.replays == 0
    report = folder.read_events()[-1]
    assert report["event"] == "delivery_report" and report["outbox"] is None
    assert report["destinations"] == [{"name": "webhook:TEAM_HOOK", "delivered": 1, "undelivered": 0, "error": None}]
    assert Outbox(folder.outbox_path).pending() == []  # nothing left to deliver


def test_a_rejected_request_is_not_retried_and_waits_in_the_outbox(tmp_path, receiver):
    receiver.start().fail_next.append(400)
    folder = RunFolder.create(tmp_path, "r")
    events = EventLog(folder, [webhook_delivery(receiver).start(folder)])
    finish_a_run(events)
    events.close()
    assert receiver.attempts == 1 and receiver.accepted == []
    report = folder.read_events()[-1]
    assert report["destinations"][0]["undelivered"] == 1 and report["destinations"][0]["error"] == "HTTP 400 Bad Request"
    assert report["outbox"] == str(folder.outbox_path)
    [entry] = Outbox(folder.outbox_path).pending()
    assert entry.payload["alert"] == "run_finished"

    # Once the cause is fixed, a later delivery (what `inspect-tinker sync` does) sends it, once.
    later = webhook_delivery(receiver).start(folder).close()
    assert later["destinations"][0]["delivered"] == 1 and later["outbox"] is None
    assert [r.key for r in receiver.accepted] == [entry.key]


def test_a_receiver_that_hangs_neither_blocks_the_emitter_nor_the_flush_beyond_its_deadline(tmp_path, receiver):
    receiver.hold = threading.Event()
    receiver.start()
    folder = RunFolder.create(tmp_path, "r")
    delivery = webhook_delivery(receiver, flush_seconds=0.5, timeout_seconds=60).start(folder)
    events = EventLog(folder, [delivery])
    finish_a_run(events)
    # emit() has returned while the receiver still holds the request: training did not wait for it.
    while receiver.in_flight == 0:
        time.sleep(0.01)
    report = delivery.close()  # returns at its deadline although the request is still held
    assert receiver.in_flight == 1 and receiver.accepted == []
    assert report["destinations"][0]["undelivered"] == 1
    assert len(Outbox(folder.outbox_path).pending()) == 1


def test_entries_are_journaled_before_delivery_so_a_killed_process_loses_none(tmp_path, receiver):
    # A separate process emits while the receiver is down and is killed without closing anything.
    folder = RunFolder.create(tmp_path, "r")
    script = textwrap.dedent(f"""
        import os
        from inspect_tinker.tracking.delivery import Delivery
        from inspect_tinker.tracking.events import EventLog
        from inspect_tinker.tracking.run_folder import RunFolder
        from inspect_tinker.tracking.webhooks import WebhookDestination
        folder = RunFolder({str(folder.root)!r})
        hook = WebhookDestination("TEAM_HOOK", "{receiver.url}/hooks/T0KEN", ["run_finished", "run_crashed"], 5)
        events = EventLog(folder, [Delivery([hook], max_backoff_seconds=0.2, flush_seconds=5).start(folder)])
        events.emit("run_started", run_dir=str(folder.root), config={{}})
        events.emit("error", message="boom")
        os._exit(9)
    """)
    assert subprocess.run([sys.executable, "-c", script], timeout=600).returncode == 9
    [entry] = Outbox(folder.outbox_path).pending()
    assert entry.payload["alert"] == "run_crashed" and "boom" in entry.payload["text"]

    receiver.start()
    report = webhook_delivery(receiver, alerts=["run_crashed"]).start(folder).close()
    assert report["destinations"][0]["delivered"] == 1 and receiver.keys("/hooks/") == [entry.key]


def test_an_event_recorded_but_never_journaled_is_delivered_by_the_next_process_and_only_it(tmp_path, receiver):
    # A process killed between writing events.jsonl and the outbox leaves events that no outbox
    # line mentions; the next start journals them from events.jsonl, and nothing else.
    receiver.start()
    folder = RunFolder.create(tmp_path, "r")
    events = EventLog(folder, [webhook_delivery(receiver, alerts=["run_finished", "run_crashed"]).start(folder)])
    finish_a_run(events)
    events.close()
    [first] = receiver.keys("/hooks/")
    EventLog(folder).emit("error", message="killed before journaling")  # what the killed process recorded

    report = webhook_delivery(receiver, alerts=["run_finished", "run_crashed"]).start(folder).close()
    assert report["destinations"][0]["delivered"] == 1
    assert [b["alert"] for b in receiver.bodies("/hooks/")] == ["run_finished", "run_crashed"]
    assert receiver.keys("/hooks/")[0] == first and receiver.replays == 0


def test_the_outbox_journal_keeps_what_is_not_marked_delivered(tmp_path):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    a, b, c = (OutboxEntry("d", key, seq, {"n": seq}) for seq, key in enumerate("abc", start=1))
    for entry in (a, b, c):
        outbox.add(entry)
    outbox.mark_delivered(b)
    with outbox.path.open("a") as f:
        f.write('{"destination": "d", "deliv')  # a line torn by a crash mid-write
    assert outbox.read() == ([a, c], {"d": 3})
    assert outbox.compact() == [a, c]
    assert [json.loads(line).get("key") for line in outbox.path.read_text().splitlines()] == ["a", "c", None]
    outbox.mark_delivered(a)
    outbox.mark_delivered(c)
    assert outbox.compact() == []
    assert outbox.read() == ([], {"d": 3})  # how far it was journaled outlives the entries
