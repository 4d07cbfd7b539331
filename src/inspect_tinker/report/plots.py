"""The report's charts as PNG files, drawn with matplotlib from ReportContents.

Static images: a run has a handful of rounds and at most a few thousand steps, which a
picture shows whole; a PNG opens anywhere (a browser, an image viewer, a CI artifact page,
a chat message) and needs no script, so the HTML report stays small and works offline.
The one place where a reader wants to point and ask (which sample, what answer) is the
sample matrix, which the HTML draws itself.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # the object API: no pyplot, no global state, no display needed
from matplotlib.ticker import MaxNLocator

from inspect_tinker.report.contents import ROLE_LABEL, ReportContents

SCORE_COLOR, BAR_COLOR, LOSS_COLOR, LR_COLOR = "#1f6feb", "#cf222e", "#8250df", "#9a6700"
ROLE_STYLE = {"gate": ":", "confirm": "--", "guard": "-."}


def plot_scores(contents: ReportContents, path: Path) -> Path | None:
    """The gate score per round with its 95 % band and the bar; None when no round was evaluated."""
    rounds = [r for r in contents.rounds if r.score is not None]
    if not rounds:
        return None
    fig = Figure(figsize=(9, 3.8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    xs, ys = [r.round for r in rounds], [r.score for r in rounds]
    banded = [r for r in rounds if r.low is not None]
    if banded:
        ax.fill_between([r.round for r in banded], [r.low for r in banded], [r.high for r in banded],
                        color=SCORE_COLOR, alpha=0.15, linewidth=0, label="95 % interval")
    roles = {t["name"]: t.get("role", "gate") for r in rounds for t in r.tasks}
    gating = [name for name, role in roles.items() if role == "gate"]
    for name, role in roles.items():
        if role == "gate" and len(gating) == 1:
            continue  # the one gating task's score is the gate score
        points = [(r.round, t["score"]) for r in rounds for t in r.tasks if t["name"] == name]
        ax.plot(*zip(*points), linewidth=1.2, alpha=0.8, marker=".", linestyle=ROLE_STYLE.get(role, ":"),
                label=name if role == "gate" else f"{name} ({ROLE_LABEL.get(role, role)})")
    ax.plot(xs, ys, color=SCORE_COLOR, linewidth=2, marker="o", label="score")
    for x, y in zip(xs, ys):
        ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    best = next((r for r in rounds if r.best), None)
    if best is not None:
        ax.plot([best.round], [best.score], marker="*", markersize=16, color="#bf8700", linestyle="none",
                label=f"best (round {best.round})")
    if contents.threshold is not None:
        ax.axhline(contents.threshold, color=BAR_COLOR, linestyle="--", linewidth=1.2,
                   label=f"bar {contents.threshold:g}")
    ax.set_xticks(xs, [("0\nbaseline" if x == 0 else str(x)) for x in xs])
    ax.set_xlabel("round")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.08)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    fig.savefig(path)
    return path


def plot_training(contents: ReportContents, path: Path) -> Path | None:
    """Training loss per step with round boundaries, and the learning rate; None before any step."""
    steps = [s for s in contents.steps if s["loss"] is not None]
    if not steps:
        return None
    fig = Figure(figsize=(9, 3.8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    xs = [s["step"] for s in steps]
    ax.plot(xs, [s["loss"] for s in steps], color=LOSS_COLOR, linewidth=1.5, marker="." if len(xs) < 80 else None,
            label="loss")
    ax.set_xlabel("optimizer step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss (per target token)", color=LOSS_COLOR)
    ax.grid(alpha=0.3)
    # A round begins where its first step is; the boundary sits half a step before it.
    starts = {}
    for s in steps:
        starts.setdefault(s["round"], s["step"])
    for round_no, first in starts.items():
        ax.axvline(first - 0.5, color="#6e7781", linestyle=":", linewidth=1)
        ax.annotate(f"round {round_no}", (first - 0.5, 1), xycoords=("data", "axes fraction"),
                    xytext=(3, -12), textcoords="offset points", fontsize=8, color="#57606a")
    rates = [(s["step"], s["learning_rate"]) for s in steps if s["learning_rate"] is not None]
    if rates:
        lr_ax = ax.twinx()
        lr_ax.step(*zip(*rates), where="mid", color=LR_COLOR, linewidth=1.2, alpha=0.8, label="learning rate")
        lr_ax.set_ylabel("learning rate", color=LR_COLOR)
        lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        lr_ax.set_ylim(bottom=0)
    fig.savefig(path)
    return path
