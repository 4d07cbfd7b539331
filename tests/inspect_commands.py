"""Inspect's own commands run as a user runs them: `inspect eval` and `inspect score` in a
subprocess, and `inspect view` served on 127.0.0.1 and read in a real browser."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx

INSPECT = Path(sys.executable).with_name("inspect")
# Generous: on a loaded machine `inspect` alone imports for many seconds, and a browser page
# that loads in a second when idle can take minutes. Only a failing test waits this long.
PATIENCE_S = 600


def inspect_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the venv's `inspect` with `args` in `cwd` (its control socket off, `env` added to ours);
    returns the finished process with its output as text."""
    return subprocess.run(
        [str(INSPECT), *args], capture_output=True, text=True, timeout=900, cwd=cwd,
        env={**os.environ, "INSPECT_EVAL_CTL_SERVER": "false", **env},
    )


@dataclass(frozen=True)
class ListedLog:
    """One row of `inspect view`'s log list, as the page shows it."""

    file: str  # the log's path under the log dir, e.g. "2026-12-02T04-58-22-00-00_demo-qa_ihop....eval"
    task: str
    status: str  # "success", "error", "cancelled", "started"
    model: str
    score: str  # the headline metric as displayed, e.g. "0.5"


@contextlib.contextmanager
def served_inspect_view(log_dir: Path) -> Iterator[str]:
    """`inspect view --log-dir log_dir` on a free port of 127.0.0.1, answering when this yields
    its base URL; stopped when the block ends, however it ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    # A file, not a pipe: the server logs every request, and a pipe nobody reads fills and
    # stalls it. Read back only to say why it did not start.
    with tempfile.TemporaryFile("w+") as output:
        server = subprocess.Popen(
            [str(INSPECT), "view", "--log-dir", str(log_dir), "--host", "127.0.0.1", "--port", str(port)],
            cwd=log_dir, stdout=output, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + PATIENCE_S
            while not _answers(f"{base}/api/log-files"):
                if server.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    raise AssertionError(f"inspect view did not start on {base}:\n{output.read()}")
                time.sleep(0.5)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=PATIENCE_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.TransportError:
        return False


# The log list of Inspect 0.3.285's viewer: an ARIA grid whose body rows are links to
# `#/tasks/<file>`, one cell per column named by `data-col-id`. While it lists the files, the
# grid's live status reads "Loading…" and the footer shows a spinner. Each row then fills in
# twice: first from a preview of the log (task, status, model, headline score), then from its
# full header (tags, task args, samples). The spinner can go before the previews arrive (rows
# named from the file, "demo-qa", and no status), and with 70 logs a few rows never got their
# full header at all, so the wait is for every row's preview: a status on each.
_READ_LOG_LIST = """
const grid = document.querySelector('[role=grid][aria-label="Evaluation logs"]');
if (!grid || document.querySelector('.spinner-border')
    || grid.querySelector('[role=status]').textContent.startsWith('Loading')) return null;
const cell = (row, column) => row.querySelector(`[data-col-id="${column}"]`);
const rows = [...grid.querySelectorAll('a[role=row]')];
if (!rows.every(row => cell(row, 'status').title)) return null;
return {
  total: Number(grid.getAttribute('aria-rowcount')) - 1,  // the header is a row too
  rows: rows.map(row => ({
    href: row.getAttribute('href'),
    task: cell(row, 'task').textContent,
    status: cell(row, 'status').title,
    model: cell(row, 'model').textContent,
    score: cell(row, 'score').textContent,
  })),
};
"""


def logs_listed_in_browser(driver, base: str) -> list[ListedLog]:
    """The logs the viewer at `base` lists on its Tasks page, top to bottom, once it has
    loaded them. `driver` is a Selenium WebDriver (the `browser` fixture)."""
    from selenium.webdriver.support.ui import WebDriverWait

    # The Tasks route, not the root: at the root a viewer holding a single log opens that log
    # instead of listing it, so a missing log would not show as a shorter list.
    driver.get(f"{base}/#/tasks/")
    try:
        listing = WebDriverWait(driver, PATIENCE_S, poll_frequency=0.2).until(
            lambda d: d.execute_script(_READ_LOG_LIST), f"the log list at {base} did not finish loading"
        )
    finally:
        driver.get("about:blank")  # no request left open on the server, which is stopped next
    rows = listing["rows"]
    # The grid draws only the rows in view: 58 of 70 in the default window (1280x1600).
    assert len(rows) == listing["total"], f"the page drew {len(rows)} of its {listing['total']} rows (only those in the window)"
    return [
        ListedLog(
            file=unquote(row["href"].split("#/tasks/", 1)[1]), task=row["task"], status=row["status"],
            model=row["model"], score=row["score"],
        )
        for row in rows
    ]
