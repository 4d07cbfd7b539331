"""The gate: does an evaluation meet the bar?

The weighted aggregate of the gating tasks must reach `eval_threshold`, and every task with
its own `threshold` must reach that. With `gate_on: lower_bound` each comparison uses the
lower end of the score's 95 % interval instead of the score, so a bar met by luck on a
few samples does not count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inspect_tinker.evals.result import EvalResult

AGGREGATE = "aggregate score"


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer for one evaluation.

    passed: every comparison held. compared: the number held against the bar (the
    score or its lower bound). held_back_by: what fell short (AGGREGATE and/or task names).
    point_only: the bar was met by the point estimate while an interval reaches below a bar.
    """

    passed: bool
    score: float
    bar: float
    gate_on: str
    compared: float
    held_back_by: list[str] = field(default_factory=list)
    point_only: bool = False
    reason: str = ""
    note: str = ""


def check_gate(result: EvalResult, *, threshold: float, gate_on: str) -> GateVerdict:
    """Hold `result` against the bar `threshold` and each gating task's own threshold."""
    use_lower = gate_on == "lower_bound"
    what = "lower bound" if use_lower else "score"
    compared = result.ci_low if use_lower else result.score
    held_back, parts, straddled = [], [], []
    if compared < threshold:
        held_back.append(AGGREGATE)
    parts.append(f"{what} {compared:.3f} {'≥' if compared >= threshold else '<'} bar {threshold:.3f}")
    if result.ci_low < threshold <= result.score:
        straddled.append(f"score {result.score:.3f} (95% interval {result.ci_low:.2f}–{result.ci_high:.2f}, "
                         f"{result.n_samples} samples)")
    for task in result.tasks_with_role("gate"):
        if task.threshold is None:
            continue
        value = task.ci_low if use_lower else task.score
        if value < task.threshold:
            held_back.append(task.name)
            parts.append(f"{task.name} {value:.3f} < its bar {task.threshold:.3f}")
        if task.ci_low < task.threshold <= task.score:
            straddled.append(f"{task.name} {task.score:.3f} (95% interval {task.ci_low:.2f}–{task.ci_high:.2f}, "
                             f"{task.n_samples} samples) against its bar {task.threshold:.3f}")
    passed = not held_back
    reason = ", ".join(parts)
    if held_back and held_back != [AGGREGATE]:
        reason += f": held back by {', '.join(h for h in held_back if h != AGGREGATE)}"
    point_only = passed and not use_lower and bool(straddled)
    note = ""
    if point_only:
        note = ("the bar is met only by the point estimate: " + "; ".join(straddled)
                + " reaches below it; more samples, or gate_on: lower_bound, would settle it")
    return GateVerdict(passed, result.score, threshold, gate_on, compared, held_back, point_only, reason, note)
