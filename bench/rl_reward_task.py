"""The reward task of bench/rl.py, one definition for both sides: inspect-tinker runs `lengthy`
as its reward task (the scorer `length`); tinker-cookbook's rl_loop is given `reward` as its
reward function (bench/_tinker_cookbook_rl_peer.py, which imports this file by path). Its name
has no leading underscore: the loop lists a task file's @task functions with Inspect's
`list_tasks`, which found none in a file named `_rl_task.py`.

The reward is a completion's length in characters over FULL_LENGTH, at most 1. It is meant for
the local server's tiny random model, whose text means nothing but whose lengths differ from
one completion to the next: every group's rewards differ, so no step is skipped, and both
loops do the same work. The curve it gives is noise around a mean, not learning.
"""

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import Score, Target, mean, scorer
from inspect_ai.solver import TaskState, generate

FULL_LENGTH = 80  # characters; 8 random tokens (bench/rl.py samples 8) average about half of it
PROMPTS = [f"Describe {w}." for w in (
    "stars", "trees", "boats", "coins", "lamps", "shoes", "bridges", "kites",
    "tents", "drums", "ropes", "wheels", "bells", "roads", "nests", "keys",
)]
HELD_OUT = [f"Describe {w}." for w in ("rivers", "clocks", "maps", "songs")]


def reward(completion: str) -> float:
    return min(len(completion) / FULL_LENGTH, 1.0)


@scorer(metrics=[mean()])
def length():
    async def score(state: TaskState, target: Target) -> Score:
        return Score(value=reward(state.output.completion))

    return score


@task
def lengthy(held_out: bool = False) -> Task:
    prompts = HELD_OUT if held_out else PROMPTS
    return Task(dataset=[Sample(id=str(i), input=p, target="") for i, p in enumerate(prompts)],
                solver=generate(), scorer=length())
