"""A reward task for RL tests on the tiny random model: longer completions score more.

The tiny model's text is random tokens, so whether it is right means nothing; but its length
varies from one completion to the next, so a group's rewards differ and its step trains (a
group of equal rewards would be skipped). Configurations name it by path:
`rl.tasks: [f"{length_reward.__file__}@lengthy"]`, and `held_out: true` gives the evaluation's
prompts, which share no n-gram with the rewarded ones (decontamination passes).
"""

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import Score, Target, mean, scorer
from inspect_ai.solver import TaskState, generate

FULL_LENGTH = 80  # characters; 8 random tokens average about half of it, so no completion is capped


@scorer(metrics=[mean()])
def length():
    """The completion's length in characters over FULL_LENGTH, at most 1."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score(value=min(len(state.output.completion) / FULL_LENGTH, 1.0))

    return score


@task
def lengthy(held_out: bool = False) -> Task:
    words = ["rivers", "clocks", "maps", "songs"] if held_out else ["stars", "trees", "boats", "coins", "lamps", "shoes"]
    return Task(dataset=[Sample(id=w, input=f"Describe {w}.", target="") for w in words],
                solver=generate(), scorer=length())
