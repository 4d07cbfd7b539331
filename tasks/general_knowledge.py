"""The regression guard as a task file: 20 short general-knowledge questions, scored by `qa_grader`.

    inspect eval tasks/general_knowledge.py --model hf/<model folder>

The same task as the registered `inspect_tinker/general_knowledge` (evals/general_knowledge.py,
which says how the questions were chosen and why decoding is pinned to greedy, 16 tokens):
the bundled SmolLM2-135M-Instruct answers all 20. Run it before and after a fine-tune to see
what the fine-tune cost.
"""

from inspect_ai import Task, task

from inspect_tinker.evals.general_knowledge import general_knowledge as packaged_general_knowledge


@task
def general_knowledge(system_prompt: str | None = None) -> Task:
    """The packaged general-knowledge questions, with an optional system prompt before each."""
    return packaged_general_knowledge(system_prompt=system_prompt)
