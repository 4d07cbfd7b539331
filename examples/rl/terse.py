"""A reward the bundled SmolLM2-135M-Instruct can learn on a CPU in minutes: open with a short sentence.

    inspect eval examples/rl/terse.py@terse_eval --model tinker/SmolLM2-135M-Instruct -M backend=local

Each prompt is an open question the model, untrained, answers with a long first sentence. The
scorer `terse` is programmatic: an answer scores 1 when its first sentence (up to `.`, `!` or
`?`) has at most MAX_WORDS words. Measured on the untrained model: 6% of the held-out prompts
answered greedily, 16% of the training prompts' samples at temperature 1, so a group of 4 often
holds a success to learn from. `terse_train` holds the prompts the rewards come from,
`terse_eval` others, never rewarded, which gate the run (examples/rl/config.yaml).
"""

import re


from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate

MAX_WORDS = 8
# Room for a first sentence of MAX_WORDS words and its end; one cut here scores 0.
MAX_TOKENS = 24
_FIRST_SENTENCE = re.compile(r"(.*?[.!?])(\s|$)", re.S)

TRAIN_PROMPTS = [
    "Why is the sky blue?", "What is photosynthesis?", "How do airplanes fly?", "What causes rain?",
    "Why do cats purr?", "What is gravity?", "How does a refrigerator work?", "What is a black hole?",
    "Why do leaves change color in autumn?", "What is the internet?", "How do vaccines work?",
    "What is inflation?", "Why do we sleep?", "What is a volcano?", "How do bees make honey?",
    "What is democracy?", "Why is the ocean salty?", "What is electricity?", "How does the heart work?",
    "What is a rainbow?", "Why do birds migrate?", "What is climate change?", "How do magnets work?",
    "What is an atom?", "Why do we dream?", "What is a computer?", "How do plants grow?",
    "What is music?", "Why is exercise healthy?", "What is the moon made of?", "How do fish breathe?",
    "What is a star?",
]
EVAL_PROMPTS = [
    "Why do dogs bark?", "What is a desert?", "How do trains run?", "What causes thunder?",
    "Why do we need water?", "What is a glacier?", "How does a camera work?", "What is friction?",
    "Why do onions make people cry?", "What is a virus?", "How do clouds form?", "What is money?",
    "Why do stars twinkle?", "What is an earthquake?", "How do birds fly?", "What is oxygen?",
]


@scorer(metrics=[accuracy(), stderr()])
def terse():
    """1 when the answer's first sentence has at most MAX_WORDS words, else 0 (none ended: 0)."""

    async def score(state: TaskState, target: Target) -> Score:
        first = _FIRST_SENTENCE.match(state.output.completion)
        words = len(first.group(1).split()) if first else None
        short = words is not None and words <= MAX_WORDS
        return Score(value=CORRECT if short else INCORRECT, answer=state.output.completion,
                     explanation=f"first sentence of {words} words" if first else "no sentence ended")

    return score


def _task(prompts: list[str], prefix: str) -> Task:
    return Task(
        dataset=[Sample(id=f"{prefix}-{i}", input=p, target="") for i, p in enumerate(prompts)],
        solver=generate(), scorer=terse(), config=GenerateConfig(max_tokens=MAX_TOKENS),
    )


@task
def terse_train() -> Task:
    """The prompts the RL rounds sample and reward."""
    return _task(TRAIN_PROMPTS, "train")


@task
def terse_eval() -> Task:
    """Held-out prompts: the bar, never rewarded."""
    return _task(EVAL_PROMPTS, "eval")
