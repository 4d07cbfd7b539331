"""Evaluation: Inspect AI tasks and scorers, run against the backend's current weights -> EvalResult.

The built-in tasks (`qa`, `multiple_choice`, `general_knowledge`) and scorers (`qa_grader`,
`numeric`) are registered with Inspect under `inspect_tinker/...` through `_registry.py`, the
package's `inspect_ai` entry point. Nothing here reads the run's configuration (loop/eval_tasks.py
builds tasks from it). This file imports nothing, so that Inspect loading one task or scorer
loads only what that one needs.
"""
