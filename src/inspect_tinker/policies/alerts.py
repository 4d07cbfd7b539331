"""Warnings about what the scores mean, from the evaluations so far.

- Fitting the gate: the gate score rose while no confirmation task's score did.
- Lost general ability: the regression guard scores below where it started.
"""

from __future__ import annotations

from inspect_tinker.evals.result import EvalResult


def alerts(current: EvalResult, previous: EvalResult | None, first: EvalResult | None) -> list[tuple[str, str]]:
    """(kind, message) pairs about `current`, given the evaluation before it and the run's first one.

    Kinds: `fitting_the_gate`, `regression_guard_fell` (the `alert` field of their events).
    """
    messages = []
    confirms = current.tasks_with_role("confirm")
    if previous is not None and confirms and current.score > previous.score:
        before = {t.name: t.score for t in previous.tasks_with_role("confirm")}
        if all(t.name in before and t.score <= before[t.name] for t in confirms):
            moves = ", ".join(f"{t.name} {before[t.name]:.3f} → {t.score:.3f}" for t in confirms)
            messages.append((
                "fitting_the_gate",
                f"the gate score rose ({previous.score:.3f} → {current.score:.3f}) but the confirmation "
                f"score did not ({moves}): the model may be fitting the gate rather than learning the task",
            ))
    if first is not None and first is not current:
        for guard in current.tasks_with_role("guard"):
            start = first.task(guard.name)
            if start is None or guard.score >= start.score:
                continue
            was = {s.id: s.correct for s in start.samples}
            broke = [s.id for s in guard.samples if was.get(s.id) and not s.correct]
            messages.append((
                "regression_guard_fell",
                f"regression guard {guard.name} fell {start.score:.3f} → {guard.score:.3f} since the first evaluation"
                + (f" (now wrong: {', '.join(broke)})" if broke else "")
                + ": fine-tuning may be costing general ability",
            ))
    return messages
