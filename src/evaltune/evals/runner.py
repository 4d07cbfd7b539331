"""Run the configured Inspect tasks against an engine and extract an EvalResult."""

from __future__ import annotations

import os
from pathlib import Path

import inspect_ai
from inspect_ai import Task

from evaltune.config import Config, EvalTaskConfig, GenerationConfig
from evaltune.engines.base import TrainingEngine
from evaltune.evals.provider import engine_model, release_engine_model
from evaltune.evals.qa import qa
from evaltune.evals.result import EvalResult, SampleResult, TaskResult

# Inspect opens a control socket per eval unless told not to; we need none.
os.environ.setdefault("INSPECT_EVAL_CTL_SERVER", "false")


def build_tasks(tasks: list[EvalTaskConfig], generation: GenerationConfig) -> list[Task]:
    """Build (and so validate) every Inspect task once, before any training."""
    return [qa(path=str(t.path), name=t.display_name, system_prompt=generation.system_prompt) for t in tasks]


def evaluate(engine: TrainingEngine, tasks: list[Task], config: Config, log_dir: Path, label: str) -> EvalResult:
    """Evaluate the engine's current weights on `tasks`; Inspect logs go to `log_dir`.

    `label` names this evaluation's model (for example `myrun-round-2`) in the logs.
    """
    generation = config.generation
    model = engine_model(engine, label, config.eval_batch_size)
    try:
        logs = inspect_ai.eval(
            tasks,
            model=model,
            log_dir=str(log_dir),
            display="none",
            log_level="error",
            max_connections=config.eval_batch_size,
            max_samples=config.eval_batch_size,
            max_tokens=generation.max_tokens,
            temperature=generation.temperature,
            stop_seqs=generation.stop or None,
            seed=config.seed,
            score_display=False,
        )
    finally:
        release_engine_model(label)
    results = [_task_result(log) for log in logs]
    score = sum(r.score for r in results) / len(results)
    return EvalResult(score=score, tasks=results)


def _task_result(log) -> TaskResult:
    if log.status != "success":
        message = log.error.message if log.error else log.status
        raise RuntimeError(f"evaluation of task {log.eval.task} failed: {message}")
    metrics = log.results.scores[0].metrics
    samples = []
    for s in log.samples or []:
        score = next(iter(s.scores.values()))
        samples.append(
            SampleResult(
                id=str(s.id),
                question=s.input if isinstance(s.input, str) else s.input[-1].text,
                expected=s.target if isinstance(s.target, str) else s.target[0],
                answer=s.output.completion,
                correct=score.value == "C",
            )
        )
    return TaskResult(
        name=log.eval.task,
        score=metrics["accuracy"].value,
        stderr=metrics["stderr"].value if "stderr" in metrics else None,
        n_samples=len(samples),
        n_correct=sum(s.correct for s in samples),
        log_path=log.location,
        samples=samples,
    )
