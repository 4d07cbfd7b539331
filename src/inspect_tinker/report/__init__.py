"""Seeing runs at a glance: the HTML report of one run (`report.html.write_report`) and the
list of runs in a folder (`report.runs.list_runs`). Nothing is re-exported here: the report
needs matplotlib and the list does not, so `inspect-tinker runs` starts without it."""
