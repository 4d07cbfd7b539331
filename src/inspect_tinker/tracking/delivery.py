"""Delivery to remote sinks (MLflow, EvalOps, webhooks): off the training thread, retried with
exponential backoff and jitter, and journaled in the run folder's outbox.jsonl so nothing is lost.

Each destination has its own lane (a queue and a thread): a slow or dead one never holds up
training or another destination, and each receives its events in the order they happened.
An entry is written to the outbox before its first attempt and marked delivered after its
success; an event a killed process wrote to events.jsonl but not yet to the outbox is journaled
from events.jsonl by the next process (`inspect-tinker resume` or `inspect-tinker sync RUN_DIR`), so a crash
at any moment loses nothing.
Every entry carries an idempotency key: a delivery repeated after a crash, or after a timeout
that did reach the receiver, is not double-counted by a receiver that honours the key.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import httpx
from tenacity import Retrying, retry_if_exception, wait_random_exponential

from inspect_tinker.tracking.run_folder import RunFolder, append_json_line, write_text_atomic

# Statuses that say "later" rather than "never" although they are 4xx.
_RETRYABLE_4XX = {408, 425, 429}


class DeliveryError(Exception):
    """A delivery that failed. A `permanent` one (the receiver rejected the request) is not
    retried; it stays in the outbox until `inspect-tinker sync` after the cause is fixed."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def is_permanent_status(status: int) -> bool:
    """True for HTTP statuses that retrying the same request cannot fix."""
    return 400 <= status < 500 and status not in _RETRYABLE_4XX


class Destination(Protocol):
    name: str  # stable across processes: outbox entries are matched to destinations by it

    def payload(self, event: dict) -> tuple[str, dict] | None:
        """What to deliver for `event`, as (idempotency key, JSON-able payload); None when the
        destination does not want it. Called with every event of the run in order (those of an
        earlier process too), so it may keep state; it runs on the training thread, so no I/O."""
        ...

    def send(self, key: str, payload: dict) -> None:
        """Deliver one payload, or raise DeliveryError."""
        ...


def post_json(client: httpx.Client, url: str, body: dict, key: str, headers: dict | None = None) -> httpx.Response:
    """POST `body` as JSON with an `Idempotency-Key` header; return the 2xx response.

    Raises DeliveryError whose message never holds the URL (webhook URLs carry tokens).
    """
    try:
        response = client.post(url, json=body, headers={"Idempotency-Key": key, **(headers or {})})
    except httpx.TransportError as err:  # refused, reset, timed out, ...: worth retrying
        raise DeliveryError(f"{err.__class__.__name__}: {err}") from None
    if response.is_success:
        return response
    status = response.status_code
    raise DeliveryError(f"HTTP {status} {response.reason_phrase}", permanent=is_permanent_status(status))


@dataclass(frozen=True)
class OutboxEntry:
    destination: str
    key: str
    seq: int  # of the event it was made from
    payload: dict

    def to_json(self) -> dict:
        return {"destination": self.destination, "key": self.key, "seq": self.seq, "payload": self.payload}


class Outbox:
    """outbox.jsonl, a journal of three kinds of lines:

    - `{"destination", "key", "seq", "payload"}`: an entry to deliver, written before its first attempt;
    - `{"destination", "delivered": key}`: that entry was delivered;
    - `{"destination", "through": seq}`: every event up to `seq` was journaled for that destination
      (written by `compact`, which drops the lines of delivered entries).

    Pending entries are those not marked delivered.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def add(self, entry: OutboxEntry) -> None:
        with self._lock:
            append_json_line(self.path, entry.to_json())

    def mark_delivered(self, entry: OutboxEntry) -> None:
        # Not fsynced: a lost mark only means a repeated delivery, which the idempotency key absorbs.
        with self._lock:
            append_json_line(self.path, {"destination": entry.destination, "delivered": entry.key}, sync=False)

    def read(self) -> tuple[list[OutboxEntry], dict[str, int]]:
        """(pending entries in the order they were written, the highest event seq journaled per destination)."""
        with self._lock:
            return self._read()

    def pending(self) -> list[OutboxEntry]:
        return self.read()[0]

    def compact(self) -> list[OutboxEntry]:
        """Rewrite the journal as its pending entries plus one `through` line per destination; return them."""
        with self._lock:
            pending, through = self._read()
            if through:
                write_text_atomic(self.path, "".join(
                    json.dumps(line, default=str) + "\n"
                    for line in [*(e.to_json() for e in pending), *({"destination": d, "through": s} for d, s in through.items())]
                ))
            return pending

    def _read(self) -> tuple[list[OutboxEntry], dict[str, int]]:
        if not self.path.exists():
            return [], {}
        entries: dict[tuple[str, str], OutboxEntry] = {}
        through: dict[str, int] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash mid-write: that entry is journaled again from events.jsonl
            name = record["destination"]
            if "delivered" in record:
                entries.pop((name, record["delivered"]), None)
            elif "through" in record:
                through[name] = max(through.get(name, 0), record["through"])
            else:
                entry = OutboxEntry(name, record["key"], record["seq"], record["payload"])
                entries.setdefault((name, entry.key), entry)
                through[name] = max(through.get(name, 0), entry.seq)
        return list(entries.values()), through


class _Lane:
    """One destination's queue and thread. During the run it retries the head entry until it
    succeeds (or fails permanently), so order is kept through an outage; once closed it stops
    trying at the deadline and leaves the rest in the outbox."""

    def __init__(self, destination: Destination, outbox: Outbox, max_backoff_seconds: float, redact: Callable[[str], str]):
        self.destination = destination
        self.delivered = 0
        self.outstanding = 0  # queued or being tried
        self._count_lock = threading.Lock()  # += from the emitting thread, -= from the lane's
        self.error: str | None = None  # why the latest entry given up on was not delivered, secrets redacted
        self._outbox = outbox
        self._redact = redact
        self._queue: queue.Queue[OutboxEntry | None] = queue.Queue()
        self._deadline = math.inf
        self._nudge = threading.Event()
        self._retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, DeliveryError) and not e.permanent),
            # "Full jitter": a random wait up to the exponential bound, so lanes do not retry in step.
            wait=wait_random_exponential(multiplier=min(0.5, max_backoff_seconds), max=max_backoff_seconds),
            stop=lambda _: time.monotonic() >= self._deadline,
            sleep=self._sleep,
            reraise=True,
        )
        self._thread = threading.Thread(target=self._work, name=f"inspect-tinker-delivery-{destination.name}", daemon=True)
        self._thread.start()

    def put(self, entry: OutboxEntry) -> None:
        with self._count_lock:
            self.outstanding += 1
        self._queue.put(entry)

    def close(self, deadline: float) -> None:
        """Deliver what is queued until `deadline`, trying a waiting entry again right away."""
        self._deadline = deadline
        self._queue.put(None)
        self._nudge.set()

    def join(self, deadline: float) -> None:
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def _sleep(self, seconds: float) -> None:
        if self._nudge.wait(min(seconds, max(0.0, self._deadline - time.monotonic()))):
            self._nudge.clear()

    def _work(self) -> None:
        while (entry := self._queue.get()) is not None:
            if time.monotonic() < self._deadline:  # past it, the entry stays in the outbox for `inspect-tinker sync`
                self._deliver(entry)
            with self._count_lock:
                self.outstanding -= 1

    def _deliver(self, entry: OutboxEntry) -> None:
        try:
            self._retrying(self.destination.send, entry.key, entry.payload)
        except DeliveryError as err:
            self.error = self._redact(str(err))
            return
        except Exception as err:  # an unexpected library error must not end the lane; the entry stays pending
            self.error = self._redact(f"{err.__class__.__name__}: {err}")
            return
        self._outbox.mark_delivered(entry)
        self.delivered += 1


class Delivery:
    """The sink that hands events to remote destinations.

    `start(folder)` opens the folder's outbox, queues what an earlier process left pending, and
    starts one lane per destination; `handle(event)` journals and queues without waiting;
    `close()` waits at most `flush_seconds` and reports what was and was not delivered.
    """

    def __init__(
        self, destinations: list[Destination], *, max_backoff_seconds: float, flush_seconds: float,
        redact: Callable[[str], str] = lambda text: text,
    ):
        self.destinations = destinations
        self.max_backoff_seconds = max_backoff_seconds
        self.flush_seconds = flush_seconds
        self.redact = redact
        self.outbox: Outbox | None = None
        self._lanes: dict[str, _Lane] = {}

    def start(self, folder: RunFolder) -> "Delivery":
        """Open `folder`'s outbox and start delivering; return self."""
        self.outbox = Outbox(folder.outbox_path)
        pending, through = self.outbox.read()
        self._lanes = {
            d.name: _Lane(d, self.outbox, self.max_backoff_seconds, self.redact) for d in self.destinations
        }
        for entry in pending:
            if entry.destination in self._lanes:
                self._lanes[entry.destination].put(entry)
        # The events already in the folder (a resumed run, `sync`) bring the destinations' state up
        # to date; one that a killed process recorded but did not journal is journaled now.
        for event in folder.read_events():
            self._journal(event, through)
        return self

    def handle(self, event: dict) -> None:
        self._journal(event, {})

    def _journal(self, event: dict, journaled_through: dict[str, int]) -> None:
        for name, lane in self._lanes.items():
            found = lane.destination.payload(event)
            if found is not None and event["seq"] > journaled_through.get(name, 0):
                entry = OutboxEntry(name, found[0], event["seq"], found[1])
                self.outbox.add(entry)
                lane.put(entry)

    def waiting(self) -> dict[str, int]:
        """How many entries each destination has still to receive (queued or being tried)."""
        return {name: lane.outstanding for name, lane in self._lanes.items() if lane.outstanding}

    def close(self) -> dict | None:
        """Wait at most `flush_seconds` for the lanes; return the report (None without destinations):
        `{"destinations": [{"name", "delivered", "undelivered", "error"}], "outbox": path or None}`."""
        if not self._lanes:
            return None
        deadline = time.monotonic() + self.flush_seconds
        for lane in self._lanes.values():
            lane.close(deadline)
        for lane in self._lanes.values():
            lane.join(deadline)
        pending = Counter(entry.destination for entry in self.outbox.compact())
        return {
            "destinations": [
                {
                    "name": name, "delivered": lane.delivered, "undelivered": pending[name],
                    "error": lane.error if pending[name] else None,
                }
                for name, lane in self._lanes.items()
            ],
            "outbox": str(self.outbox.path) if pending else None,
        }
