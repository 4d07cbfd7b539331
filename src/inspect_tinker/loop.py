"""The round loop: train, checkpoint, evaluate, decide; until the bar is met or rounds run out.

Read top to bottom, `run` and `_rounds` are the whole algorithm; every step they call lives
in a module named for that step. The run's position is kept in a RunState that is written
to the run folder at every durable point, so `resume` continues exactly where a killed run
stopped.
"""

from __future__ import annotations

import contextlib
import resource
import shlex
import shutil
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

from inspect_tinker.config import Config
from inspect_tinker.data.batching import batch_for_step, epoch_of_step
from inspect_tinker.data.decontamination import evaluation_inputs
from inspect_tinker.data.prepare import check_training_records, prepare_training_data
from inspect_tinker.provider import create_backend
from inspect_tinker.provider.launch import LaunchedProcess
from inspect_tinker.errors import UsageError
from inspect_tinker.eval_tasks import adds_guard, build_tasks
from inspect_tinker.evals.runner import EvalTask
from inspect_tinker.evaluation import evaluate_and_record, recorded_evaluations
from inspect_tinker.graceful_stop import GracefulStop, RunInterrupted, StoppedAtOnce
from inspect_tinker.learning_rate import resolve_learning_rate
from inspect_tinker.policies import Hyperparameters, PolicyRules, account_for_new_records, check_gate, decide
from inspect_tinker.policies.selection import DataAddition
from inspect_tinker.policies.selector import DataSelector, addition_examples
from inspect_tinker.report.html import write_report
from inspect_tinker.schedule import schedule_multiplier
from inspect_tinker.summary import summarize
from inspect_tinker.tracking import (
    EventLog, RoundRecord, RunFolder, RunState, Sink, best_round, checkpoint_address, write_checkpoint,
)
from inspect_tinker.tracking.crashes import record_crash
from inspect_tinker.tracking.resume import restore_point
from inspect_tinker.tracking.sinks import delivery_for
from inspect_tinker.tracking.run_folder import disk_full, write_json_atomic


def run(
    config: Config, sinks: list[Sink] | None = None, *, resume: Path | None = None, changed_keys: list[str] = ()
) -> dict:
    """Run the evaluation-driven loop described by `config`; return the summary dict.

    With `resume`, continue the run in that folder from its last durable point (the caller
    has compared `config` with the run's configuration; `changed_keys` are the accepted
    differences, recorded as an event). The summary's `exit_code` is 0
    when the bar was met and 1 when it was not. Ctrl-C or SIGTERM stops at the next safe
    point and raises RunInterrupted.
    """
    process = LaunchedProcess.from_env()
    if process.rank > 0:  # under torchrun, the other processes keep a silent record of their own aside
        config, sinks = config.model_copy(update={
            "output_dir": config.output_dir / f".rank-{process.rank}",
            "mlflow_tracking_uri": None, "evalops_enabled": False, "webhooks": [],  # rank 0 reports for all
        }), []
        resume = resume and resume.parent / f".rank-{process.rank}" / resume.name
    delivery = delivery_for(config)  # MLflow, EvalOps, webhooks; a missing secret fails here, before any work
    tasks = build_tasks(config)  # every evaluation file, task and scorer checked before a run folder exists
    first = RunState(learning_rate=config.learning_rate, steps_per_round=config.steps_per_round, lora_rank=config.lora_rank)
    if resume is None:
        folder, state = RunFolder.create(config.output_dir, config.run_name), first
        folder.write_config(config.model_dump(mode="json"))
    else:
        folder = RunFolder.open(resume)
        state = folder.read_state() or first
        not_started = folder.never_started()
        if not_started is not None:
            raise UsageError(
                f"{folder.root} never started ({not_started}); there is nothing to resume. Fix that and start "
                "the run again with `inspect-tinker run` (the same run_name replaces this folder)."
            )
        if state.phase == "finished":
            raise UsageError(f"{folder.root} has already finished (see summary.json); there is nothing to resume.")
        for key in ("learning_rate", "steps_per_round"):  # carried in the run state: a forced change
            if key in changed_keys:                        # applies from the round in progress
                setattr(state, key, getattr(config, key))
    dead_pid = folder.acquire()
    if changed_keys:  # accepted with --force: the run goes on under the new configuration
        folder.write_config(config.model_dump(mode="json"))
    events = EventLog(folder, [*(sinks or []), delivery.start(folder)])
    record_crash(folder, events, dead_pid)  # the session before this one was killed without a word
    resume_command = folder.resume_command
    events.emit("run_started", run_dir=str(folder.root), config=brief(config), resumed=resume is not None)
    if changed_keys:
        events.emit("config_changed", keys=list(changed_keys))
    try:
        with GracefulStop() as stop:
            return _rounds(config, tasks, folder, events, state, stop)
    except RunInterrupted as err:
        events.emit("interrupted", message=str(err), signal=err.signal, resume_command=resume_command)
        raise
    except KeyboardInterrupt as err:
        by = f"a second {err.signal}" if isinstance(err, StoppedAtOnce) else "the user"
        events.emit("interrupted", message=f"stopped at once by {by}", resume_command=resume_command)
        raise
    except Exception as err:
        if isinstance(err, UsageError) and resume is None and folder.read_state() is None:
            # Bad input (training data, candidate pool, model size) found before any durable work:
            # the run never started, and there is nothing to resume.
            events.emit("not_started", message=str(err))
            raise
        full = disk_full(err, folder.root)
        if full is None:
            events.emit("error", message=f"{err.__class__.__name__}: {err}", resume_command=resume_command)
            raise
        message = f"{full}; free some space there, then continue the run with: {resume_command}"
        with contextlib.suppress(OSError):  # the full disk may refuse the event too
            events.emit("error", message=message, resume_command=resume_command)
        raise UsageError(message) from err
    finally:
        try:
            events.close()  # waits at most delivery_flush_seconds; the rest stays in the outbox
        finally:
            folder.release()  # even when a second Ctrl-C cuts the wait short
        if folder.never_started() is None:  # a run that never started has nothing to report
            _write_report(folder, events)  # after the release: the report sees a run that has stopped


def _write_report(folder: RunFolder, events: EventLog) -> None:
    """Every run leaves its HTML report when it ends, finished or not."""
    try:
        path = write_report(folder.root)
    except Exception as err:  # a report that cannot be drawn must not change the run's outcome
        with contextlib.suppress(OSError):  # nor can a full disk that refuses this event as well
            events.emit("report_failed", message=f"{err.__class__.__name__}: {err}",
                        command=shlex.join(["inspect-tinker", "report", str(folder.root)]))
    else:
        events.emit("report_written", path=str(path))


def _rounds(
    config: Config, tasks: list[EvalTask], folder: RunFolder, events: EventLog, state: RunState, stop: GracefulStop
) -> dict:
    started, elapsed_before = time.time(), state.elapsed_seconds

    def save_state() -> None:
        state.elapsed_seconds = elapsed_before + time.time() - started
        folder.write_state(state)

    # Everything that can fail on bad input is checked before the model loads.
    data_progress = partial(events.emit, "data_progress")
    eval_inputs = evaluation_inputs([t.task for t in tasks])
    records = check_training_records(config.train_file, config.data, eval_inputs, config.strict, progress=data_progress)
    selector = DataSelector.from_config(config, records, tasks, eval_inputs)
    if selector and selector.pool_report:
        events.emit("candidates_checked", **selector.pool_report)

    t0 = time.time()
    backend = create_backend(config)
    events.emit("engine_ready", info=asdict(backend.info), seconds=time.time() - t0)

    file_examples, data_report = prepare_training_data(
        records, backend.tokenizer, config.max_seq_length, config.data, progress=data_progress
    )
    write_json_atomic(folder.root / "data_report.json", data_report.to_dict())
    events.emit("data_prepared", report=str(folder.root / "data_report.json"), **data_report.summary())

    def training_examples() -> list:  # the file's examples, then the records data selection added
        additions = [DataAddition.from_dict(a) for a in state.data_additions]
        return file_examples + addition_examples(additions, backend.tokenizer, config)

    examples = training_examples()

    if state.learning_rate == "auto":  # a fresh run: the rate depends on the model just loaded
        state.learning_rate = resolve_learning_rate("auto", backend.info)
        events.emit("learning_rate_chosen", learning_rate=state.learning_rate,
                    model_type=backend.info.model_type, hidden_size=backend.info.hidden_size)

    if state.checkpoint is not None:
        restore_point(folder, state, events)  # falls back past a torn checkpoint
        if state.checkpoint is not None:
            backend.load_checkpoint(Path(state.checkpoint))
        events.emit("resumed", round=state.round, phase=state.phase, global_step=state.global_step, checkpoint=state.checkpoint)

    evaluations = recorded_evaluations(folder)  # earlier rounds' results, for fixed/broke and alerts
    bar_met = False
    if config.baseline_eval and not state.baseline_done:
        baseline = evaluate_and_record(0, backend, tasks, config, folder, events, evaluations)
        verdict = check_gate(baseline, threshold=config.eval_threshold, gate_on=config.gate_on)
        state.history.append(RoundRecord(round=0, learning_rate=None, final_loss=None, score=baseline.score, adapter=None,
                                         bar_met=verdict.passed))
        state.baseline_done = True
        if verdict.passed:  # the base model meets the bar already: there is nothing to train
            events.emit(
                "decision", round=0, score=baseline.score, threshold=config.eval_threshold, gate=asdict(verdict),
                best_round=0, rollback_to=None, stop=True, bar_met=True, next_learning_rate=state.learning_rate,
                next_steps_per_round=state.steps_per_round, next_lora_rank=state.lora_rank, rule="bar_met",
                reason=f"{verdict.reason}: the base model meets the bar untrained, nothing to train",
            )
            state.phase, bar_met = "finished", True
        save_state()

    while state.phase != "finished":
        round_no = state.round
        if state.phase == "training":
            if config.policy == "grow_rank" and state.lora_rank > backend.lora_rank:  # decided after the last round
                backend.grow_lora_rank(state.lora_rank)
                events.emit("adapter_grown", round=round_no, lora_rank=state.lora_rank,
                            trainable_parameters=backend.info.trainable_parameters)
            _train_round(backend, examples, config, folder, events, state, stop, save_state)
            checkpoint_dir = folder.round_dir(round_no)
            adapter = write_checkpoint(backend, checkpoint_dir)
            state.phase, state.checkpoint = "evaluating", str(checkpoint_dir)
            save_state()
            shutil.rmtree(folder.partial_dir, ignore_errors=True)  # superseded by the round's checkpoint
            events.emit("checkpoint_saved", round=round_no, path=adapter, checkpoint=str(checkpoint_dir))

        result = evaluate_and_record(round_no, backend, tasks, config, folder, events, evaluations,
                                     model_path=checkpoint_address(folder.round_dir(round_no)))
        verdict = check_gate(result, threshold=config.eval_threshold, gate_on=config.gate_on)
        current = Hyperparameters(state.learning_rate, state.steps_per_round, state.lora_rank)
        decision = decide(
            verdict, round_no, current, [r.score for r in state.history], max_rounds=config.max_rounds,
            rules=PolicyRules.from_config(config),
        )
        if selector and not decision.stop:  # before the decision is recorded: what it adds changes it
            decision = account_for_new_records(decision, current, _select_data(selector, result, round_no, state, events))
        state.history.append(
            RoundRecord(round_no, state.learning_rate, state.last_loss, result.score,
                        adapter=checkpoint_address(folder.round_dir(round_no)),  # a path, or tinker://...
                        checkpoint=str(folder.round_dir(round_no)), global_step=state.global_step,
                        bar_met=verdict.passed)
        )
        # A rollback goes back to the best trained round: its checkpoint holds the adapter and optimizer.
        best, best_trained = best_round(state.history), best_round(state.history, trained_only=True)
        rollback = config.on_regression == "rollback" and result.score < best_trained.score and not decision.stop
        events.emit(
            "decision", round=round_no, score=result.score, threshold=config.eval_threshold, gate=asdict(verdict),
            best_round=best.round, rollback_to=best_trained.round if rollback else None, **asdict(decision),
        )
        if rollback:
            backend.load_checkpoint(Path(best_trained.checkpoint))
            state.checkpoint = best_trained.checkpoint
        folder.prune_trainer_states(keep={r.round for r in state.history[-config.keep_last:]} | {best_trained.round})

        bar_met = decision.bar_met
        if decision.stop:
            state.phase = "finished"
        else:
            state.round, state.phase = round_no + 1, "training"
            state.learning_rate, state.round_start_step = decision.next_learning_rate, state.global_step
            state.steps_per_round, state.lora_rank = decision.next_steps_per_round, decision.next_lora_rank
            state.round_start_checkpoint = state.checkpoint
            if selector:
                examples = training_examples()
        save_state()
        if stop.requested and not decision.stop:
            raise stop.interrupted(f"stopped after round {round_no}")

    summary = summarize(
        state.history, config, folder, bar_met=bar_met,
        wall_seconds=elapsed_before + time.time() - started, peak_memory_mb=_peak_memory_mb(),
    )
    folder.write_summary(summary)
    events.emit("run_finished", **summary)
    return summary


def _train_round(backend, examples, config: Config, folder: RunFolder, events: EventLog,
                 state: RunState, stop: GracefulStop, save_state) -> None:
    """Run the remaining optimizer steps of the round in progress, saving on request."""
    events.emit(
        "round_started", round=state.round, max_rounds=config.max_rounds, learning_rate=state.learning_rate,
        steps=state.steps_per_round, lora_rank=state.lora_rank, examples=len(examples),
        resumed_at_step=state.step_in_round,
    )
    t0, tokens, pads = time.time(), 0, 0
    while state.step_in_round < state.steps_per_round:
        batch = [examples[i] for i in batch_for_step(len(examples), config.batch_size, state.global_step, config.seed)]
        step_rate = state.learning_rate * schedule_multiplier(  # per round: its length may change (schedule.py)
            state.global_step, step_in_round=state.step_in_round, round_steps=state.steps_per_round,
            schedule=config.lr_schedule, warmup_steps=config.warmup_steps,
        )
        metrics = backend.forward_backward(batch)
        backend.optim_step(step_rate)
        state.global_step += 1
        state.last_loss = metrics.loss
        tokens += sum(len(e.input_ids) for e in batch)
        pads += metrics.n_pad_tokens
        events.emit(
            "step", round=state.round, step=state.global_step, loss=metrics.loss, target_tokens=metrics.n_tokens,
            learning_rate=step_rate, epoch=epoch_of_step(len(examples), config.batch_size, state.global_step),
        )
        finished = state.step_in_round >= state.steps_per_round
        periodic = config.save_every_steps and state.step_in_round % config.save_every_steps == 0
        if not finished and (periodic or stop.requested):
            write_checkpoint(backend, folder.partial_dir)
            state.checkpoint = str(folder.partial_dir)
            save_state()
            events.emit("partial_checkpoint_saved", round=state.round, step=state.global_step)
            if stop.requested:
                raise stop.interrupted(f"stopped in round {state.round} after step {state.global_step}")
    seconds = time.time() - t0
    events.emit(
        "round_trained", round=state.round, seconds=seconds, tokens_per_second=tokens / max(seconds, 1e-9),
        pad_fraction=pads / max(tokens + pads, 1),
    )


def _select_data(selector: DataSelector, result, round_no: int, state: RunState, events: EventLog) -> int:
    """Add training data aimed at the failed gate samples of round `round_no`; recorded in `state`.
    Returns how many pool records were added."""
    chosen = selector.choose(result, round_no, [DataAddition.from_dict(a) for a in state.data_additions])
    events.emit("data_selected", round=round_no, **chosen.summary())
    for addition in chosen.additions:
        events.emit("data_added", **addition.to_dict())
    for refusal in chosen.refusals:
        events.emit("data_refused", **refusal.to_dict())
    state.data_additions += [a.to_dict() for a in chosen.additions]
    return chosen.new_records


def brief(config: Config) -> dict:
    """The few configuration values a person wants to see at the start of a run."""
    return {
        "base_model": config.base_model,
        "backend": config.backend,
        "train_file": str(config.train_file),
        "eval_tasks": [_task_brief(t) for t in config.eval_tasks]
        + (["general_knowledge (regression guard)"] if adds_guard(config) else []),
        "gate_on": config.gate_on,
        "max_rounds": config.max_rounds,
        "steps_per_round": config.steps_per_round,
        "batch_size": config.batch_size,
        "eval_threshold": config.eval_threshold,
        "learning_rate": config.learning_rate,
        "lr_decay": config.lr_decay,
        "lr_schedule": config.lr_schedule,
        "warmup_steps": config.warmup_steps,
        "policy": config.policy,
        "candidate_file": str(config.candidate_file) if config.candidate_file else None,
    }


def _task_brief(task) -> str:
    details = [f"weight {task.weight:g}"] if task.weight != 1 else []
    details += [f"own bar {task.threshold}"] if task.threshold is not None else []
    details = ["confirmation, never gates"] if task.role == "confirm" else details
    return f"{task.display_name} ({', '.join(details)})" if details else task.display_name


def _peak_memory_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
