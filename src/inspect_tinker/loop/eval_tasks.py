"""From the config's `eval_tasks` (plus the regression guard) to ready Inspect tasks.

Building a task loads and checks its samples, resolves its scorer and pins its generation
settings, so every problem a task can have surfaces here, at start-up, as one UsageError
naming the task: the loop builds the tasks before the model loads. The tasks and scorers
themselves live in evals/, which knows nothing of the configuration; this module is where
the configuration meets them.

Inspect's own scorers are used wherever one fits (`exact`, `match`, `f1`, `pattern`,
`choice`, `model_graded_fact`); `answer_included` is our `qa_grader` and `numeric` ours too
(evals/scorers.py says why).
"""

from __future__ import annotations

from pathlib import Path

from inspect_ai import Task, list_tasks, task_with
# Inspect's own resolution of `file.py@name` and registry names; its public entry point
# (eval) resolves them only when it runs, too late to report a bad task before training.
from inspect_ai._eval.loader import load_task_spec
from inspect_ai._util.registry import registry_unqualified_name
from inspect_ai.model import GenerateConfig, ModelRole, get_model
from inspect_ai.scorer import Scorer, choice, exact, f1, model_graded_fact, pattern
from inspect_ai.scorer import match as match_scorer

from inspect_tinker.config import (
    AnswerIncludedScorer,
    ChoiceScorer,
    Config,
    EvalTaskConfig,
    ExactScorer,
    F1Scorer,
    MatchScorer,
    ModelGradedScorer,
    NumericScorer,
    PatternScorer,
    ScorerConfig,
)
from inspect_tinker.errors import UsageError
from inspect_tinker.evals.general_knowledge import general_knowledge
from inspect_tinker.evals.multiple_choice import multiple_choice_task
from inspect_tinker.evals.qa import qa
from inspect_tinker.evals.runner import EvalTask
from inspect_tinker.evals.scorers import numeric, parse_number, qa_grader

GUARD_NAME = "general_knowledge"


def build_tasks(config: Config) -> list[EvalTask]:
    """Build every configured task, and the regression guard unless switched off or already listed."""
    tasks = [_build(i, entry, config) for i, entry in enumerate(config.eval_tasks)]
    if adds_guard(config):
        guard = general_knowledge(system_prompt=config.generation.system_prompt)
        tasks.append(_finish(guard, GUARD_NAME, "guard", 0.0, None, "answer_included", config, max_tokens=None))
    return tasks


def build_reward_tasks(config: Config) -> list[EvalTask]:
    """Build the RL rounds' reward tasks (`rl.tasks`), checked as evaluation tasks are."""
    return [_build(i, entry, config, section="rl.tasks") for i, entry in enumerate(config.rl.tasks if config.rl else [])]


def adds_guard(config: Config) -> bool:
    """Whether the regression guard runs as an extra task (on, and not already one of eval_tasks)."""
    return config.regression_guard and all(t.task != f"inspect_tinker/{GUARD_NAME}" for t in config.eval_tasks)


def _build(index: int, entry: EvalTaskConfig, config: Config, section: str = "eval_tasks") -> EvalTask:
    where = f"{section}[{index}] ({entry.display_name})"
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
        # Inspect compares the files it lists with its resolved root: a path written with `..`
        # (relative to the config file) must be resolved too.
        names = [t.name for t in list_tasks(Path(file).name, root_dir=Path(file).parent.resolve())]
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


def judge_settings(config: ModelGradedScorer) -> GenerateConfig:
    """How a model-graded scorer's judge generates: greedy, at most `judge_max_tokens`."""
    return GenerateConfig(max_tokens=config.judge_max_tokens, temperature=0.0)


def base_model_judge_role(config: ModelGradedScorer) -> str:
    """The Inspect model role a scorer without a `judge` grades with: the base model, which
    evaluation binds per run (evals/runner.py); one role per judge setting."""
    return f"base_model_judge_{config.judge_max_tokens}"


def base_model_judges(config: Config) -> dict[str, GenerateConfig]:
    """The base-model judge roles the configured tasks grade with, and their settings."""
    scorers = [t.scorer for t in config.eval_tasks if isinstance(t.scorer, ModelGradedScorer) and t.scorer.judge is None]
    return {base_model_judge_role(s): judge_settings(s) for s in scorers}


def build_scorer(config: ScorerConfig) -> Scorer:
    """The Inspect scorer a `scorer` config entry describes."""
    match config:
        case AnswerIncludedScorer():
            return qa_grader()
        case ExactScorer():
            return exact()
        case MatchScorer(location=location, ignore_case=ignore_case):
            return match_scorer(location=location, ignore_case=ignore_case)
        case F1Scorer():
            return f1()
        case NumericScorer(tolerance=tol, relative_tolerance=rel, location=location):
            return numeric(tolerance=tol, relative_tolerance=rel, location=location)
        case PatternScorer(pattern=regex, ignore_case=ignore_case):
            return pattern(regex, ignore_case=ignore_case)
        case ChoiceScorer():
            return choice()
        case ModelGradedScorer():
            return model_graded_fact(
                template=config.template,
                instructions=config.instructions,
                partial_credit=config.partial_credit,
                model=get_model(config.judge, config=judge_settings(config), memoize=False) if config.judge else None,
                model_role=ModelRole(base_model_judge_role(config), required=True),
            )
    raise AssertionError(f"no scorer for {config!r}")  # the config's union and this match list the same names


def scorer_label(config: ScorerConfig, base_model: str) -> str:
    """How the scorer is named in output: its name and the options that change its meaning."""
    match config:
        case MatchScorer(location=location):
            return f"match ({location})"
        case NumericScorer(tolerance=tol, relative_tolerance=rel, location=location):
            within = f"±{tol:g}" if tol else ""
            within += (" or " if within and rel else "") + (f"±{rel:.0%}" if rel else "")
            return f"numeric ({location} number{', ' + within if within else ', exact'})"
        case PatternScorer(pattern=regex):
            return f"pattern /{regex}/"
        case ModelGradedScorer(judge=None):
            return f"model_graded (judge: local base model {base_model}, without the adapter)"
        case ModelGradedScorer(judge=judge):
            return f"model_graded (judge: {judge})"
    return config.name
