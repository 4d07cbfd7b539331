"""One evaluation as the loop and `inspect-tinker eval` run it, and the eval-only command itself.

`Evaluator.stage`: a round's evaluation as a stage of the loop (the configured tasks at the
round's checkpoint). `record_evaluation`: record one evaluation of the loop: mark which samples
changed since the previous evaluation, emit the result and any alerts, and keep the run folder's
per-sample history. `run_eval`: evaluate the base model or a saved adapter without training,
with the loop's output and exit codes.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass
from pathlib import Path

from inspect_ai import Task
from inspect_ai.log import EvalLog

from inspect_tinker.config import Config
from inspect_tinker.errors import ExitCode, UsageError
from inspect_tinker.evals.history import mark_changes, sample_history
from inspect_tinker.evals.result import EvalResult
from inspect_tinker.evals.runner import EvalTask, evaluate, stage_result, stage_tasks
from inspect_tinker.loop.eval_tasks import base_model_judges, build_tasks
from inspect_tinker.loop.stages import drop_stage_logs
from inspect_tinker.policies import alerts, check_gate
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import Backend, check_backend_requirements, create_backend
from inspect_tinker.loop.usage import round_usage
from inspect_tinker.tracking import EventLog, RoundUsage, RunFolder, Sink, round_adapter
from inspect_tinker.tracking.run_folder import write_json_atomic
from inspect_tinker.tracking.task_metadata import stage_labels

SAMPLE_HISTORY_FILE = "sample_history.json"


@dataclass
class Evaluator:
    """Evaluates the backend's current weights on the configured tasks, a stage of the loop each
    time; `earlier` (round -> result) holds the run's evaluations so far, for what changed."""

    backend: Backend
    config: Config
    folder: RunFolder
    events: EventLog
    earlier: dict[int, EvalResult]

    def stage(self, round_no: int, learning_rate: float | None, checkpoint: str | None, *, tokens_trained: int,
              cost_before: float | None) -> Generator[list[Task], list[EvalLog], tuple[EvalResult, RoundUsage]]:
        """The evaluation stage of round `round_no`: the configured tasks, answered with the
        backend's current weights (saved as `checkpoint`; None: the base model). Returns the
        result and what the round used (it trained `tokens_trained` tokens; the run had cost
        `cost_before` until it), both recorded (`record_evaluation`)."""
        config, folder = self.config, self.folder
        for stale in [r for r in self.earlier if r >= round_no]:  # an evaluation a kill cut short, now redone
            del self.earlier[stale]
        drop_stage_logs(folder, round_no, "eval")  # and its Inspect logs
        tasks = build_tasks(config)  # fresh tasks every stage: task_with changes the task it is given

        def labels(task: EvalTask) -> tuple[dict, list[str]]:
            return stage_labels(run=folder.name, run_dir=str(folder.root), round_no=round_no, stage="eval",
                                learning_rate=learning_rate, checkpoint=checkpoint, threshold=config.eval_threshold,
                                role=task.role)

        t0 = time.time()
        try:
            logs = yield stage_tasks(self.backend, config.backend, tasks, base_model_judges(config), checkpoint, labels)
        finally:
            self.backend.end_sampling()  # a sharded backend still serves the other processes' evaluations
        result = stage_result(tasks, logs)
        usage = round_usage(tokens_trained, logs, config.price_per_million_tokens, cost_before)
        record_evaluation(round_no, result, time.time() - t0, folder, self.events, self.earlier, usage)
        return result, usage


def record_evaluation(
    round_no: int, result: EvalResult, seconds: float, folder: RunFolder, events: EventLog,
    earlier: dict[int, EvalResult], usage: RoundUsage | None = None,
) -> None:
    """Record `result`, the evaluation of round `round_no` (`seconds` long); `earlier` (round ->
    result, the rounds before it) gains it.

    Marks the samples that changed since the previous evaluation, emits `eval_result` (see
    evals/result.py for its fields, and `usage`: what the round used, when the loop counted it)
    and one `alert` per warning, and rewrites `sample_history.json` in the run folder.
    """
    previous_round = max(earlier) if earlier else None
    previous = earlier.get(previous_round) if previous_round is not None else None
    mark_changes(result, previous, previous_round)
    events.emit("eval_result", round=round_no, seconds=seconds, **result.to_dict(),
                **({"usage": asdict(usage)} if usage is not None else {}))
    for kind, message in alerts(result, previous, earlier[min(earlier)] if earlier else None):
        events.emit("alert", alert=kind, round=round_no, message=message)
    earlier[round_no] = result
    write_json_atomic(folder.root / SAMPLE_HISTORY_FILE, sample_history(earlier))


def recorded_evaluations(folder: RunFolder) -> dict[int, EvalResult]:
    """The evaluations a run folder's events hold, by round (the latest of a round wins)."""
    return {e["round"]: EvalResult.from_dict(e) for e in folder.read_events() if e["event"] == "eval_result"}


def resolve_adapter(adapter: Path | None, run_dir: Path | None, round_no: int | None) -> Path | None:
    """The adapter folder to evaluate: `adapter`, or round `round_no` of `run_dir` (its best round by default).

    None means the base model (round 0 of a run is the base model). Raises UsageError with a fix when the folder is not there.
    """
    if adapter is not None and run_dir is not None:
        raise UsageError("give either --adapter or --run, not both.")
    if run_dir is not None:
        return round_adapter(RunFolder.open(run_dir), round_no)
    if adapter is not None and not (adapter / "adapter_model.safetensors").is_file():
        raise UsageError(f"{adapter} is no PEFT adapter folder (adapter_model.safetensors missing).")
    return adapter


def adapter_lora_settings(adapter: Path) -> dict:
    """The LoRA keys of the config that make the backend's adapter the shape of a saved one."""
    saved = json.loads((adapter / "adapter_config.json").read_text())
    targets = saved.get("target_modules")
    return {
        "lora_rank": saved["r"],
        "lora_alpha": saved["lora_alpha"],
        "lora_target_modules": sorted(targets) if isinstance(targets, (list, set)) else targets or "all-linear",
    }


def run_eval(config: Config, adapter: Path | None = None, sinks: list[Sink] | None = None) -> dict:
    """Evaluate the base model (`adapter` None) or a saved PEFT adapter on the configured tasks.

    Writes a run folder (events, Inspect logs under logs/, sample history,
    summary.json) and returns the summary; its `exit_code` is 0 when the bar is met, else 1.
    """
    started = time.time()
    if adapter is not None:
        config = config.model_copy(update=adapter_lora_settings(adapter))
    check_backend_requirements(backend_settings(config))
    tasks = build_tasks(config)  # every evaluation file, task and scorer checked before a run folder exists
    folder = RunFolder.create(config.output_dir, config.run_name)
    folder.write_config(config.model_dump(mode="json"))
    events = EventLog(folder, sinks)
    events.emit("eval_started", run_dir=str(folder.root), base_model=config.base_model,
                adapter=str(adapter) if adapter else None, threshold=config.eval_threshold, gate_on=config.gate_on)
    try:
        t0 = time.time()
        backend = create_backend(backend_settings(config))
        if adapter is not None:
            backend.load_adapter(adapter)
        events.emit("backend_ready", info=asdict(backend.info), seconds=time.time() - t0)
        t0 = time.time()
        result = evaluate(backend, config.backend, tasks, base_model_judges(config), config.eval_batch_size,
                          folder.logs_dir, str(adapter) if adapter else None)
        record_evaluation(0, result, time.time() - t0, folder, events, {})
        verdict = check_gate(result, threshold=config.eval_threshold, gate_on=config.gate_on)
        summary = {
            "run_dir": str(folder.root),
            "adapter": str(adapter) if adapter else None,
            "bar_met": verdict.passed,
            "exit_code": int(ExitCode.BAR_MET if verdict.passed else ExitCode.BAR_NOT_MET),
            "threshold": config.eval_threshold,
            "score": result.score,
            "gate": asdict(verdict),
            "wall_seconds": time.time() - started,
            "next_steps": [f"Browse the evaluation logs: {shlex.join(['inspect', 'view', '--log-dir', str(folder.logs_dir)])}"],
        }
        folder.write_summary(summary)
        events.emit("eval_finished", **summary)
        return summary
    except KeyboardInterrupt:
        events.emit("interrupted", message="stopped by the user")
        raise
    except Exception as err:
        events.emit("error", message=f"{err.__class__.__name__}: {err}")
        raise
