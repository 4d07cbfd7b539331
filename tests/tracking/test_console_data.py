"""The console's data lines: a transient progress bar for large files, none for small ones."""

from io import StringIO

from rich.console import Console

from inspect_tinker.tracking.console import ConsoleSink


def sink_on_a_terminal():
    return ConsoleSink(Console(file=StringIO(), force_terminal=True, width=100))


def test_a_large_file_shows_a_data_progress_bar_that_goes_away_when_done():
    sink = sink_on_a_terminal()
    for done in (1000, 2000, 2500):
        sink.handle({"event": "data_progress", "stage": "checking", "done": done, "total": 2500})
        assert (sink.data_progress is None) == (done == 2500)
    assert "checking data" in sink.console.file.getvalue()


def test_a_small_file_shows_no_progress_bar():
    sink = sink_on_a_terminal()
    sink.handle({"event": "data_progress", "stage": "checking", "done": 36, "total": 36})
    assert sink.data_progress is None and sink.console.file.getvalue() == ""
