"""Seeing runs at a glance: the HTML report of one run and the list of runs in a folder."""

from evaltune.report.html import REPORT_FILE, write_report
from evaltune.report.runs import RunRow, list_runs

__all__ = ["REPORT_FILE", "RunRow", "list_runs", "write_report"]
