"""The packaged regression guard: short general-knowledge questions the bundled base model answers.

Reported every round beside the user's tasks (never gating), so a fine-tune that costs
general ability shows up as broken questions. Registered with Inspect as
`inspect_tinker/general_knowledge`; the original demo's `simple_qa` maps to it.

The 20 questions were written for this project and kept from 40 candidates as the ones
SmolLM2-135M-Instruct answers greedily within 12 tokens; its score is 20/20 (docs/evaluation.md).
"""

from __future__ import annotations

from pathlib import Path

from inspect_ai import Task, task, task_with
from inspect_ai.model import GenerateConfig

from inspect_tinker.evals.qa import qa

QUESTIONS = Path(__file__).with_name("general_knowledge.jsonl")
# The documented 20/20 is greedy decoding of 16 tokens; every setting it depends on is pinned
# here, so that `inspect eval inspect_tinker/general_knowledge` reproduces it on any provider that
# runs the model itself. Greedy is `top_k=1`, not `temperature=0`: Inspect's `hf/` provider
# samples unless given `-M do_sample=false`, and transformers refuses temperature 0 while
# sampling, whereas sampling from the one most likely token is greedy (transformers, vLLM).
# Inside a run, the run's own `generation.temperature` (0 by default) and seed apply as well.
GUARD_GENERATION = GenerateConfig(max_tokens=16, top_k=1, seed=0)

@task
def general_knowledge(system_prompt: str | None = None) -> Task:
    """Built-in QA over the packaged general-knowledge questions, answer-included, greedy, 16 tokens."""
    return task_with(
        qa(path=str(QUESTIONS), name="general_knowledge", system_prompt=system_prompt),
        config=GUARD_GENERATION,
    )
