"""The packaged regression guard: short general-knowledge questions the bundled base model answers.

Reported every round beside the user's tasks (never gating), so a fine-tune that costs
general ability shows up as broken questions. Registered with Inspect as
`evaltune/general_knowledge`; the original demo's `simple_qa` maps to it.

The 20 questions were written for this project and kept from 40 candidates as the ones
SmolLM2-135M-Instruct answers greedily within 12 tokens; its score is 20/20 (see README).
"""

from __future__ import annotations

from pathlib import Path

from inspect_ai import Task, task, task_with
from inspect_ai.model import GenerateConfig

from evaltune.evals.qa import qa

QUESTIONS = Path(__file__).with_name("general_knowledge.jsonl")
GUARD_MAX_TOKENS = 16  # the answers come in the first sentence; more tokens only cost time


@task
def general_knowledge(system_prompt: str | None = None) -> Task:
    """Built-in QA over the packaged general-knowledge questions, answer-included, 16 tokens."""
    return task_with(
        qa(path=str(QUESTIONS), name="general_knowledge", system_prompt=system_prompt),
        config=GenerateConfig(max_tokens=GUARD_MAX_TOKENS),
    )
