"""Warnings about what the scores mean, from the evaluations so far.

- Fitting the gate: the gate score rose while no confirmation task's score did.
- Lost general ability: the regression guard scores below where it started (`guard_fall`, the one
  rule, which the tracking hooks apply too).
- Reward hacking: an RL round's rewards rose while its evaluation did not (`reward_hacking`).
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
            fell = guard_fall(guard.name, start.score if start else None, guard.score)
            if fell is None:
                continue
            was = {s.id: s.correct for s in start.samples}
            broke = [s.id for s in guard.samples if was.get(s.id) and not s.correct]
            messages.append(("regression_guard_fell", fell + (f" (now wrong: {', '.join(broke)})" if broke else "")
                             + f": {GUARD_MEANING}"))
    return messages


GUARD_MEANING = "fine-tuning may be costing general ability"


def guard_fall(name: str, first: float | None, score: float) -> str | None:
    """The regression guard's rule: the guard task `name` fell when it scores below `first`, its
    score at the run's first evaluation (None: there was none before this one). The sentence that
    says so, or None."""
    if first is None or score >= first:
        return None
    return f"regression guard {name} fell {first:.3f} → {score:.3f} since the first evaluation"


def reward_hacking(step_rewards: list[float], score_before: float | None, score: float, min_delta: float,
                   rewards_before: list[float] = ()) -> str | None:
    """The RL rule, in two cases; the sentence that says so, or None. The model may be learning what
    the reward tasks' scorers pay for rather than the task the evaluation measures when:
    - the mean reward rose over the round's steps (`step_rewards`, first to last) by at least
      `min_delta` while the evaluation score did not rise by `min_delta` over the round before's
      (`score_before`; None: nothing to compare);
    - or the round's mean reward held or rose over the RL round before's (`rewards_before`, its
      step rewards; empty: none) while the evaluation fell by at least `min_delta`: a reward
      already saturated when the round starts cannot rise within it."""
    if score_before is None or not step_rewards:
        return None
    first, last = step_rewards[0], step_rewards[-1]
    if len(step_rewards) >= 2 and last - first >= min_delta and score - score_before < min_delta:
        return (f"the mean reward rose ({first:.3f} → {last:.3f} over the round's steps) but the evaluation score did "
                f"not ({score_before:.3f} → {score:.3f}): possible reward hacking; the model may be learning what the "
                "reward scorer pays for rather than the task the evaluation measures")
    mean, before = sum(step_rewards) / len(step_rewards), sum(rewards_before) / max(len(rewards_before), 1)
    if rewards_before and mean >= before and score_before - score >= min_delta:
        return (f"the mean reward held or rose ({before:.3f} → {mean:.3f} over the round before and this one) but the "
                f"evaluation score fell ({score_before:.3f} → {score:.3f}): possible reward hacking; the model may be "
                "learning what the reward scorer pays for rather than the task the evaluation measures")
    return None
