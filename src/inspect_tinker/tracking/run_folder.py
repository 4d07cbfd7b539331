"""The run folder: the source of truth of a run, written so that a crash loses nothing.

runs/<name>/config.json, events.jsonl (append-only), event_counter.json (the run's id and its
last event number, atomic), state.json (atomic), inputs.json (the sha256 of every file the run
reads), rounds/<n>/..., outbox.jsonl (what remote sinks have not received yet), summary.json
(written last: its presence means the run finished).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

from inspect_tinker.errors import UsageError
from inspect_tinker.tracking.checkpoints import drop_trainer_state
from inspect_tinker.tracking.run_state import RunState


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file, fsync it, and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` atomically with `data` as indented JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


def append_json_line(path: Path, data: Any, *, sync: bool = True) -> None:
    """Append `data` as one JSON line to `path`, and (with `sync`) fsync it, so a killed
    process keeps every line it wrote.

    A write that fails part-way (the disk is full) is cut off again before the error is
    raised: a partial line left at the end would swallow the next line appended after it.
    """
    line = (json.dumps(data, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = 0
            while written < len(line):  # a full disk can take part of a write before it refuses the rest
                written += os.write(fd, line[written:])
            if sync:
                os.fsync(fd)
        except OSError:
            os.ftruncate(fd, end)  # shrinking needs no space
            raise
    finally:
        os.close(fd)


def make_folder(path: Path) -> None:
    """Create `path` and its parents (an existing folder is fine); UsageError saying why not when
    the place cannot hold it: a file in the way, a read-only or foreign folder, a full disk."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        existing = next(p for p in (path, *path.parents) if p.exists())
        reason = f"{existing} is a file" if not existing.is_dir() else f"{err.strerror}: {err.filename or path}"
        raise UsageError(
            f"cannot create the folder {path} ({reason}); set output_dir (--output-dir) to a folder you can write to."
        ) from None


# Writers that report a full disk only in words: torch's checkpoint writer ("unexpected pos",
# "file write failed", or its C++ stream's "basic_ios::clear: iostream error" when the disk
# fills while it writes the archive's end), and Inspect, whose failed evaluation carries the
# OSError as text.
_WRITE_FAILED = ("unexpected pos", "file write failed", "iostream error", "No space left on device",
                 "Disk quota exceeded")
_ALMOST_FULL_BYTES = 1 << 20  # what a failed write leaves; a disk with more did not fail for space


def disk_full(error: BaseException, path: Path) -> str | None:
    """When `error` comes from the disk holding `path` being full, a sentence saying so; else None.

    Full means an ENOSPC or EDQUOT OSError in the error's chain, or a write failure reported in
    words (see _WRITE_FAILED) while that disk has less than 1 MiB left.
    """
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    out_of_space = any(isinstance(c, OSError) and c.errno in (errno.ENOSPC, errno.EDQUOT) for c in chain)
    if not out_of_space and not any(words in str(c) for c in chain for words in _WRITE_FAILED):
        return None
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        free = 0
    if not out_of_space and free >= _ALMOST_FULL_BYTES:
        return None
    return f"the disk holding {path} is full ({free // 1024} KiB free)"


class RunFolder:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.name = self.root.name
        self._lock_fd: int | None = None  # run.lock, open and locked while this process holds the run

    @classmethod
    def create(cls, output_dir: Path, run_name: str | None, log_dir: Path | None = None) -> "RunFolder":
        """Make a new, empty run folder; refuses to reuse an existing one.

        Its Inspect logs go to `log_dir` (under `inspect eval`, Inspect's log dir, which other
        runs may share), recorded in the folder's log_dir.json; without it, to its own `logs/`.
        """
        # Absolute, so that the paths in events and the outbox still hold for `inspect-tinker sync` run elsewhere.
        output_dir = Path(output_dir).absolute()
        name = run_name or time.strftime("%Y%m%d-%H%M%S")
        root = output_dir / name
        if run_name is None:
            n = 1
            while root.exists():  # two runs started in the same second
                n += 1
                root = output_dir / f"{name}-{n}"
        elif root.exists() and cls(root).never_started() is not None:
            shutil.rmtree(root)  # a start that bad input stopped left nothing durable: this run replaces it
        elif root.exists():
            raise UsageError(f"run folder {root} already exists; choose another run_name or remove it.")
        make_folder(root / "rounds")
        folder = cls(root)
        if log_dir is None:
            make_folder(root / "logs")
        else:
            make_folder(Path(log_dir))
            write_json_atomic(root / _LOG_DIR_FILE, {"log_dir": str(Path(log_dir).absolute())})
        return folder

    @classmethod
    def open(cls, root: Path) -> "RunFolder":
        """An existing run folder, for resuming; UsageError when it is not one."""
        root = Path(root).absolute()
        if not (root / "config.json").is_file():
            raise UsageError(f"{root} is not a run folder (no config.json); pass the folder a run created.")
        return cls(root)

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    def round_dir(self, round_no: int) -> Path:
        return self.root / "rounds" / str(round_no)

    @property
    def logs_dir(self) -> Path:
        """The Inspect log dir of the run: every stage's log (baseline, train_round_<n>, each round's tasks).

        Its own `logs/`, or the log dir recorded in log_dir.json (a run `inspect eval` started
        with its logs where Inspect puts them; each log's metadata names its run folder).
        """
        recorded = self.root / _LOG_DIR_FILE
        if recorded.is_file():
            return Path(self._read_json(_LOG_DIR_FILE, "where the run's Inspect logs are")["log_dir"])
        return self.root / "logs"

    @property
    def shares_log_dir(self) -> bool:
        """Whether the run's logs are in a log dir that other runs may write to as well (not its own `logs/`)."""
        return self.logs_dir != self.root / "logs"

    def write_config(self, config_dict: dict) -> None:
        write_json_atomic(self.root / "config.json", config_dict)

    @property
    def partial_dir(self) -> Path:
        """The latest mid-round checkpoint (one at a time; replaced as training goes on)."""
        return self.root / "partial"

    def read_config(self) -> dict:
        """config.json's content; UsageError naming the file when it is damaged."""
        return self._read_json("config.json", "the configuration the run was started with")

    def _read_json(self, name: str, what: str) -> Any:
        path = self.root / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UsageError(
                f"{path} is damaged ({err.__class__.__name__}: {err}); it should hold {what}. Restore it from a "
                "backup, or start a new run."
            ) from None

    @property
    def data_report_path(self) -> Path:
        return self.root / "data_report.json"

    def write_inputs(self, files: list[dict]) -> None:
        """Record the files the run reads, each {key, path, sha256} (tracking/inputs.py), in inputs.json."""
        write_json_atomic(self.root / "inputs.json", {"files": files})

    def read_inputs(self) -> list[dict] | None:
        """inputs.json's files; None in a run folder made before runs recorded them."""
        if not (self.root / "inputs.json").is_file():
            return None
        data = self._read_json("inputs.json", "the sha256 of every file the run reads")
        if not isinstance(data, dict) or not isinstance(data.get("files"), list):
            raise UsageError(f"{self.root / 'inputs.json'} is damaged (no list of files in it); restore it from a "
                             "backup, or start a new run.")
        return data["files"]

    def write_state(self, state: RunState) -> None:
        write_json_atomic(self.root / "state.json", state.to_dict())

    def read_state(self) -> RunState | None:
        """state.json's RunState, None when there is none yet; UsageError naming the file when it is damaged."""
        if not (self.root / "state.json").is_file():
            return None
        data = self._read_json("state.json", "the run's position (round, phase, history)")
        try:
            return RunState.from_dict(data)
        except (TypeError, KeyError, AttributeError) as err:
            raise UsageError(
                f"{self.root / 'state.json'} is damaged (not the run's position: {err}). Restore it from a backup, "
                "or start a new run."
            ) from None

    def prune_trainer_states(self, keep: set[int]) -> None:
        """Delete optimizer states of every round not in `keep` (adapters are always kept)."""
        for round_dir in (self.root / "rounds").iterdir():
            if round_dir.name.isdigit() and int(round_dir.name) not in keep:
                drop_trainer_state(round_dir)

    @property
    def resume_command(self) -> str:
        """The shell command that continues this run (quoted: run folders may have spaces)."""
        return shlex.join(["inspect-tinker", "resume", str(self.root)])

    @property
    def lock_path(self) -> Path:
        return self.root / "run.lock"

    # The run's lock is an flock(2) on run.lock, held by an open file for the process's lifetime:
    # taking it is one atomic system call, and the kernel drops it when its process dies,
    # however it dies, so a killed run never leaves a lock that looks held (a pid file read
    # for liveness does: two processes can both find it free, and a reused pid keeps a dead
    # run "running"). run.lock also holds the process id, for messages. A clean release removes
    # the file; one that is left and not locked is the mark of a process that died holding it.

    def running_pid(self) -> int | None:
        """None when no process holds the run's lock; else the holder's process id (0 while it
        has not written it yet)."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # dropped again when fd closes
            except BlockingIOError:
                return _pid_in(fd)
            return None
        finally:
            os.close(fd)

    def acquire(self) -> int | None:
        """Take the run's lock for this process (until `release` or the process's end); refuse
        (UsageError) while another process holds it.

        Returns the process id a holder left in run.lock when it died without releasing
        (killed, or the machine went down), else None.
        """
        if self._lock_fd is not None:
            return None
        give_up = time.monotonic() + _LOCK_PROBE_SECONDS
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _pid_in(fd)
                os.close(fd)
                if time.monotonic() < give_up:  # perhaps only a `running_pid` probe, for an instant
                    time.sleep(0.02)
                    continue
                who = f"process {holder}" if holder else "another process"
                raise UsageError(f"{self.root} is being run by {who}; wait for it or stop it first.") from None
            if _same_file(fd, self.lock_path):
                break
            os.close(fd)  # locked a file its releasing holder had just removed; take the new one
        dead_holder = _pid_in(fd) or None
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            os.fsync(fd)
        except OSError:  # a full disk: the lock is held all the same; the pid is only for messages
            pass
        self._lock_fd = fd
        return dead_holder

    def release(self) -> None:
        """Give the lock back (nothing when this process does not hold it) and remove run.lock."""
        if self._lock_fd is None:
            return
        # Removed before it is unlocked: a process that opens run.lock from now on gets a new file.
        self.lock_path.unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.root / "summary.json", summary)

    def read_summary(self) -> dict | None:
        """summary.json's content, None before the run finished; UsageError naming the file when it is damaged."""
        if not (self.root / "summary.json").is_file():
            return None
        return self._read_json("summary.json", "the finished run's outcome")

    @property
    def outbox_path(self) -> Path:
        return self.root / "outbox.jsonl"

    def append_event(self, event: dict) -> None:
        append_json_line(self.events_path, event)

    @property
    def event_counter_path(self) -> Path:
        return self.root / "event_counter.json"

    def read_event_counter(self) -> tuple[str | None, int]:
        """The run's id and the last event number handed out, as event_counter.json holds them
        ((None, 0) in a folder without one); UsageError naming the file when it is damaged."""
        if not self.event_counter_path.is_file():
            return None, 0
        data = self._read_json(self.event_counter_path.name, "the run's id and its last event number")
        if not isinstance(data, dict) or not isinstance(data.get("seq"), int):
            raise UsageError(f"{self.event_counter_path} is damaged (no event number in it); restore it from a backup, "
                             "or delete it to number events from events.jsonl again.")
        return data.get("run_id"), data["seq"]

    def write_event_counter(self, run_id: str, seq: int) -> None:
        """Record `seq` as the last event number handed out (atomic replace)."""
        write_json_atomic(self.event_counter_path, {"run_id": run_id, "seq": seq})

    def never_started(self) -> str | None:
        """The message of the usage error that stopped this run before it did anything durable
        (its `not_started` event), or None when the run started."""
        sessions = [e for e in self.read_events() if e.get("event") in ("run_started", "not_started")]
        return sessions[-1].get("message", "") if sessions and sessions[-1]["event"] == "not_started" else None

    def read_events(self) -> list[dict]:
        if not self.events_path.exists():
            return []
        events = []
        for line in self.events_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write; every complete line is kept
        return events

    def cut_torn_event(self) -> str | None:
        """Cut an unfinished last line off events.jsonl (a write that a kill or a full disk broke
        off) and return it; None when the file ends with a whole line. For the process that
        holds the run: the next event must start on a line of its own."""
        try:
            data = self.events_path.read_bytes()
        except FileNotFoundError:
            return None
        if not data or data.endswith(b"\n"):
            return None
        keep = data.rfind(b"\n") + 1
        os.truncate(self.events_path, keep)
        return data[keep:].decode("utf-8", errors="replace")

    def last_event_seq(self) -> int:
        """The highest event `seq` in events.jsonl, counting lines a crash tore (0 for none).

        Read from the text, not the parsed lines: a torn line's number may have reached a
        remote sink, so the next event must be numbered above it.
        """
        try:
            data = self.events_path.read_bytes()
        except FileNotFoundError:
            return 0
        return max(event_seqs(data.decode("utf-8", errors="replace")), default=0)


# The file naming a log dir outside the run folder (RunFolder.logs_dir).
_LOG_DIR_FILE = "log_dir.json"

_SEQ = re.compile(r'"seq": (\d+)')


def event_seqs(text: str) -> list[int]:
    """Every event sequence number written in `text` (lines of events.jsonl, whole or torn)."""
    return [int(n) for n in _SEQ.findall(text)]


# How long `acquire` keeps trying a lock that is held: a `running_pid` probe (`inspect-tinker runs`)
# holds it for an instant, which must not make a starting run refuse.
_LOCK_PROBE_SECONDS = 1.0


def _pid_in(fd: int) -> int:
    """The process id written in the open run.lock `fd`; 0 when there is none."""
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else 0


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
