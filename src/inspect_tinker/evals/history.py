"""Per-sample history across rounds: which questions a round fixed and which it broke."""

from __future__ import annotations

from inspect_tinker.evals.paired import compare_paired
from inspect_tinker.evals.result import EvalResult, TaskResult


def mark_changes(current: EvalResult, previous: EvalResult | None, previous_round: int | None) -> None:
    """Fill each task's `fixed` / `broke` lists and its `paired` comparison (evals/paired.py) of
    `current` against `previous`, evaluated in round `previous_round`.

    A sample counts when it is in both evaluations of the same task (matched by id and epoch).
    """
    if previous is None:
        return
    for task in current.tasks:
        before = previous.task(task.name)
        if before is None:
            continue
        comparison = compare_paired(_values(before), _values(task))
        task.compared_with = previous_round
        task.fixed = [sample_id for sample_id, _ in comparison.fixed]
        task.broke = [sample_id for sample_id, _ in comparison.broke]
        task.paired = comparison.statistics()


def _values(task: TaskResult) -> dict[tuple[str, int], float]:
    return {(s.id, s.epoch): s.value for s in task.samples}


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
