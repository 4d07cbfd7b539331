"""Per-sample history across rounds: which questions a round fixed and which it broke."""

from __future__ import annotations

from inspect_tinker.evals.result import EvalResult


def mark_changes(current: EvalResult, previous: EvalResult | None, previous_round: int | None) -> None:
    """Fill each task's `fixed` / `broke` lists of `current` by comparing with `previous`.

    A sample counts when it is in both evaluations of the same task (matched by id).
    """
    if previous is None:
        return
    for task in current.tasks:
        before = previous.task(task.name)
        if before is None:
            continue
        was = {s.id: s.correct for s in before.samples}
        task.compared_with = previous_round
        task.fixed = [s.id for s in task.samples if s.id in was and s.correct and not was[s.id]]
        task.broke = [s.id for s in task.samples if s.id in was and not s.correct and was[s.id]]


def sample_history(results: dict[int, EvalResult]) -> dict:
    """Every sample's record over the rounds: `{task: {sample id: {question, expected, rounds: {n: correct}}}}`."""
    history: dict[str, dict] = {}
    for round_no, result in sorted(results.items()):
        for task in result.tasks:
            rows = history.setdefault(task.name, {})
            for s in task.samples:
                row = rows.setdefault(s.id, {"question": s.question, "expected": s.expected, "rounds": {}})
                row["rounds"][str(round_no)] = s.correct
    return history
