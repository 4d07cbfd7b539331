"""Seeing runs at a glance: the HTML report of one run and the list of runs in a folder."""

from inspect_tinker.report.html import write_report
from inspect_tinker.report.runs import RunRow, list_runs

__all__ = ["RunRow", "list_runs", "write_report"]
