"""What Inspect loads through the package's `inspect_ai` entry point (pyproject.toml).

Only imports: each import runs the decorators that register a scorer or task under
`inspect_tinker/<name>`, or the `tinker` model API, so that `inspect eval
inspect_tinker/general_knowledge`, `inspect score --scorer inspect_tinker/qa_grader` or
`--model tinker/<model>` resolve, and the tracking hooks (`inspect_tinker/evalops`,
`inspect_tinker/mlflow`, `inspect_tinker/alerts`, each gated by the environment: tracking/hooks.py)
observe every eval. Inspect imports this module at
the start of every `inspect eval`, whatever it runs (it loads every installed entry point to
find hooks), so nothing imported here may load torch, transformers, peft or tinker
(tests/test_registry.py holds it to that).
"""

# ruff: noqa: F401
from inspect_tinker.evals.general_knowledge import general_knowledge
from inspect_tinker.evals.multiple_choice import multiple_choice_task
from inspect_tinker.evals.qa import qa
from inspect_tinker.evals.scorers import numeric, qa_grader
from inspect_tinker.loop.source import train_until_threshold
from inspect_tinker.provider.model_api import tinker_provider
from inspect_tinker.tracking.hooks import AlertsHook, EvalOpsHook, MLflowHook
