"""From the config's `eval_tasks` (plus the regression guard) to ready Inspect tasks.

Building a task loads and checks its samples, resolves its scorer and pins its generation
settings, so every problem a task can have surfaces here, at start-up, as one UsageError
naming the task: the loop builds the tasks before the model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inspect_ai import Task, list_tasks, task_with
# Inspect's own resolution of `file.py@name` and registry names; its public entry point
# (eval) resolves them only when it runs, too late to report a bad task before training.
from inspect_ai._eval.loader import load_task_spec
from inspect_ai._util.registry import registry_unqualified_name
from inspect_ai.model import GenerateConfig

from inspect_tinker.config import AnswerIncludedScorer, ChoiceScorer, Config, EvalTaskConfig, NumericScorer
from inspect_tinker.errors import UsageError
from inspect_tinker.evals.general_knowledge import general_knowledge
from inspect_tinker.evals.multiple_choice import multiple_choice_task
from inspect_tinker.evals.qa import qa
from inspect_tinker.evals.scorers import build_scorer, parse_number, scorer_label

GUARD_NAME = "general_knowledge"


@dataclass
class EvalTask:
    """An Inspect task with what inspect-tinker needs to know about it."""

    task: Task
    name: str
    role: str  # "gate", "confirm" or "guard"
    weight: float
    threshold: float | None
    scorer: str  # label shown in output
    generation: dict  # the settings its answers are generated with


def build_tasks(config: Config) -> list[EvalTask]:
    """Build every configured task, and the regression guard unless switched off or already listed."""
    tasks = [_build(i, entry, config) for i, entry in enumerate(config.eval_tasks)]
    if adds_guard(config):
        guard = general_knowledge(system_prompt=config.generation.system_prompt)
        tasks.append(_finish(guard, GUARD_NAME, "guard", 0.0, None, "answer_included", config, max_tokens=None))
    return tasks


def adds_guard(config: Config) -> bool:
    """Whether the regression guard runs as an extra task (on, and not already one of eval_tasks)."""
    return config.regression_guard and all(t.task != f"inspect_tinker/{GUARD_NAME}" for t in config.eval_tasks)


def _build(index: int, entry: EvalTaskConfig, config: Config) -> EvalTask:
    where = f"eval_tasks[{index}] ({entry.display_name})"
    system_prompt = config.generation.system_prompt
    if entry.type == "qa":
        task = qa(path=str(entry.path), name=entry.display_name, system_prompt=system_prompt)
        default_scorer = AnswerIncludedScorer()
    elif entry.type == "multiple_choice":
        task = multiple_choice_task(path=str(entry.path), name=entry.display_name, system_prompt=system_prompt)
        default_scorer = ChoiceScorer(name="choice")
    else:
        task = _load_inspect_task(entry, where)
        default_scorer = None
    if isinstance(entry.scorer, NumericScorer):
        _check_numeric_targets(task, where)
    if entry.scorer is not None:
        try:
            task = task_with(task, scorer=build_scorer(entry.scorer))
        except Exception as err:  # e.g. a judge model whose provider is unknown or lacks its API key
            raise UsageError(f"{where}: scorer {entry.scorer.name}: {err}") from None
    scorer = entry.scorer or default_scorer
    label = scorer_label(scorer, config.base_model) if scorer is not None else _own_scorer_label(task)
    if entry.limit is not None:
        task = task_with(task, dataset=task.dataset[: entry.limit])
    return _finish(task, entry.display_name, entry.role, entry.weight, entry.threshold, label, config, entry.max_tokens)


def _finish(
    task: Task, name: str, role: str, weight: float, threshold: float | None, scorer: str, config: Config,
    max_tokens: int | None,
) -> EvalTask:
    """Pin the generation settings on the task (they go into its Inspect log) and wrap it."""
    g = config.generation
    # The task's own max_tokens (the guard's, an Inspect task's) wins over the run-wide default.
    tokens = max_tokens or task.config.max_tokens or g.max_tokens
    settings = GenerateConfig(max_tokens=tokens, temperature=g.temperature, stop_seqs=g.stop or None, seed=config.seed)
    task = task_with(task, name=name, config=task.config.merge(settings))
    generation = {
        "max_tokens": tokens, "temperature": g.temperature, "system_prompt": g.system_prompt,
        "stop": list(g.stop), "seed": config.seed,
    }
    return EvalTask(task, name, role, weight, threshold, scorer, generation)


def _load_inspect_task(entry: EvalTaskConfig, where: str) -> Task:
    spec = entry.task or ""
    file, at, name = spec.partition("@")
    if at:
        names = [t.name for t in list_tasks(Path(file).name, root_dir=Path(file).parent)]
        if name not in names:
            raise UsageError(
                f"{where}: no Inspect task {name!r} in {file}; its @task functions: {', '.join(names) or 'none'}."
            )
    try:
        found = load_task_spec(spec, entry.task_args)
    except UsageError:
        raise
    except Exception as err:  # a user's task code failing to build is their input's problem
        raise UsageError(
            f"{where}: Inspect task {spec!r} could not be built: {err.__class__.__name__}: {err}"
        ) from None
    if not found:
        if spec.endswith(".py"):
            raise UsageError(f"{where}: no @task function in {spec}.")
        raise UsageError(
            f"{where}: {spec!r} does not resolve to an Inspect task: no installed package registers it "
            "(install the package that provides it, e.g. `pip install inspect-evals`) and it is no file."
        )
    if len(found) > 1:
        names = ", ".join(f"{spec}@{t.name}" for t in found)
        raise UsageError(f"{where}: {spec} holds several tasks; name one: {names}")
    return found[0]


def _check_numeric_targets(task: Task, where: str) -> None:
    for sample in task.dataset:
        targets = [sample.target] if isinstance(sample.target, str) else sample.target
        if not any(parse_number(t) is not None for t in targets):
            raise UsageError(
                f"{where}: the numeric scorer needs a number as the answer; sample {sample.id} has {targets[0]!r}."
            )


def _own_scorer_label(task: Task) -> str:
    scorers = task.scorer or []
    return ", ".join(registry_unqualified_name(s) for s in scorers) or "none"
