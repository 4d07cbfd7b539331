"""The run report: one self-contained HTML file (charts inlined) with the PNGs beside it.

runs/<name>/report.html opens offline in any browser: styles, script and images are all
inside the file. The same charts are written to runs/<name>/plots/*.png for people who
want the pictures alone.
"""

from __future__ import annotations

import base64
import os
import shlex
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from inspect_tinker.report.contents import ROLE_LABEL, ReportContents, read_report_contents
from inspect_tinker.report.plots import plot_scores, plot_training
from inspect_tinker.report.runs import format_duration, format_score

REPORT_FILE = "report.html"
PLOTS_DIR = "plots"


def write_report(run_dir: Path) -> Path:
    """Write report.html and plots/*.png into the run folder `run_dir`; return the HTML's path.

    Works on a finished, running, interrupted or crashed run (it shows what exists).
    UsageError when `run_dir` is not a run folder.
    """
    contents = read_report_contents(run_dir)
    root = Path(contents.run.run_dir)
    plots = root / PLOTS_DIR
    plots.mkdir(exist_ok=True)
    charts = {}
    for name, plot in (("scores", plot_scores), ("training", plot_training)):
        path = plot(contents, plots / f"{name}.png")
        if path is not None:
            charts[name] = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    html = render_html(contents, charts)
    out = root / REPORT_FILE
    tmp = out.with_name(f".{out.name}.tmp")  # a reader never sees half a report
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    return out


def render_html(contents: ReportContents, charts: dict[str, str]) -> str:
    """The report page for `contents`; `charts` maps a chart name to its image as a data: URL."""
    env = Environment(
        loader=PackageLoader("inspect_tinker", "report"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(score=format_score, number=_number, duration=format_duration, shell_quote=shlex.quote)
    return env.get_template("template.html.j2").render(c=contents, charts=charts, roles=ROLE_LABEL)


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
