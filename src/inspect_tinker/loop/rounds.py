"""The loop: a baseline, then rounds of train -> evaluate -> decide, until the bar is met or rounds run out.

`rounds` reads as design.md lists the data flow. It is a generator of stages: each `yield`
hands Inspect one stage (a round's training task, or the round's evaluation tasks) and gets
that stage's logs back; the task source (source.py) runs it from Inspect's callbacks, so the
code between two yields runs in `task_complete`. Every step it calls lives in a module named for
that step. The run's position is `state`, written to the run folder at every durable point, so a
resumed run enters the loop where the killed one left it.
"""

from __future__ import annotations

import resource
import shutil
import time
from collections.abc import Callable, Generator
from dataclasses import asdict
from functools import partial
from pathlib import Path

from inspect_ai import Task
from inspect_ai.log import EvalLog, list_eval_logs, read_eval_log

from inspect_tinker.config import Config
from inspect_tinker.data.batching import batch_for_step, epoch_of_step
from inspect_tinker.data.decontamination import evaluation_inputs
from inspect_tinker.data.prepare import check_training_records, prepare_training_data
from inspect_tinker.eval_tasks import base_model_judges, build_tasks
from inspect_tinker.evals.result import EvalResult
from inspect_tinker.evals.runner import EvalTask, stage_result, stage_tasks
from inspect_tinker.evaluation import record_evaluation, recorded_evaluations
from inspect_tinker.graceful_stop import GracefulStop
from inspect_tinker.learning_rate import resolve_learning_rate
from inspect_tinker.loop.training import TrainedRound, training_task
from inspect_tinker.policies import Hyperparameters, PolicyRules, account_for_new_records, check_gate, decide
from inspect_tinker.policies.selection import DataAddition
from inspect_tinker.policies.selector import DataSelector, addition_examples
from inspect_tinker.provider import create_backend
from inspect_tinker.schedule import schedule_multiplier
from inspect_tinker.summary import summarize
from inspect_tinker.tracking import EventLog, RoundRecord, RunFolder, RunState, best_round, checkpoint_address, write_checkpoint
from inspect_tinker.tracking.resume import restore_point
from inspect_tinker.tracking.run_folder import write_json_atomic
from inspect_tinker.tracking.task_metadata import stage_labels

Stages = Generator[list[Task], list[EvalLog], object]


def rounds(
    config: Config, tasks: list[EvalTask], folder: RunFolder, events: EventLog, state: RunState, stop: GracefulStop
) -> Generator[list[Task], list[EvalLog], dict]:
    """The loop of one run; yields its stages, receives their logs, returns the summary dict."""
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
    evaluate = partial(_evaluate, backend, config, folder, events, evaluations)
    bar_met = False
    if config.baseline_eval and not state.baseline_done:
        baseline = yield from evaluate(0, None, None)
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
            yield from _train(partial(_train_round, backend, examples, config, folder, events, state, stop, save_state),
                              config, folder, state, len(examples))
            checkpoint_dir = folder.round_dir(round_no)
            adapter = write_checkpoint(backend, checkpoint_dir)
            state.phase, state.checkpoint = "evaluating", str(checkpoint_dir)
            save_state()
            shutil.rmtree(folder.partial_dir, ignore_errors=True)  # superseded by the round's checkpoint
            events.emit("checkpoint_saved", round=round_no, path=adapter, checkpoint=str(checkpoint_dir))

        result = yield from evaluate(round_no, state.learning_rate, checkpoint_address(folder.round_dir(round_no)))
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


def _evaluate(backend, config: Config, folder: RunFolder, events: EventLog, earlier: dict[int, EvalResult],
              round_no: int, learning_rate: float | None, checkpoint: str | None) -> Stages:
    """The evaluation stage of round `round_no`: the configured tasks, answered with the backend's
    current weights (saved as `checkpoint`; None: the base model). `earlier` (round -> result) gains
    the result, which is returned."""
    for stale in [r for r in earlier if r >= round_no]:  # an evaluation a kill cut short, now redone
        del earlier[stale]
    _drop_logs(folder, round_no, "eval")  # and its Inspect logs
    tasks = build_tasks(config)  # fresh tasks every stage: task_with changes the task it is given

    def labels(task: EvalTask) -> tuple[dict, list[str]]:
        return stage_labels(run=folder.name, run_dir=str(folder.root), round_no=round_no, stage="eval",
                            learning_rate=learning_rate, checkpoint=checkpoint, threshold=config.eval_threshold,
                            role=task.role)

    t0 = time.time()
    try:
        logs = yield stage_tasks(backend, config.backend, tasks, base_model_judges(config), checkpoint, labels)
    finally:
        backend.end_sampling()  # a sharded backend still serves the other processes' evaluations
    result = stage_result(tasks, logs)
    record_evaluation(round_no, result, time.time() - t0, folder, events, earlier)
    return result


def _train(train: Callable[[], TrainedRound], config: Config, folder: RunFolder, state: RunState,
           examples: int) -> Stages:
    """The training stage of the round in progress: the task `train_round_<n>` runs `train`."""
    _drop_logs(folder, state.round, "train")  # a training stage a kill cut short, now continued
    start = checkpoint_address(Path(state.checkpoint)) if state.checkpoint else None
    metadata, tags = stage_labels(run=folder.name, run_dir=str(folder.root), round_no=state.round, stage="train",
                                  learning_rate=state.learning_rate, checkpoint=start, threshold=config.eval_threshold)
    task, outcome = training_task(state.round, train, learning_rate=state.learning_rate, steps=state.steps_per_round,
                                  batch_size=config.batch_size, lora_rank=state.lora_rank, examples=examples,
                                  metadata=metadata, tags=tags)
    try:
        [log] = yield [task]
    except Exception as err:  # Inspect ended the stage without its log: it may not have been able to write it
        if outcome.error is not None:
            raise outcome.error from err  # what stopped the training (a full disk) is the cause to report
        raise
    if outcome.error is not None:  # what the training raised (a stop request too), not Inspect's wrapping of it
        raise outcome.error
    if log.status != "success" or outcome.trained is None:
        raise RuntimeError(f"training round {state.round} failed: {log.error.message if log.error else log.status}")


def _drop_logs(folder: RunFolder, round_no: int, stage: str) -> None:
    """Delete the Inspect logs an earlier, cut-short attempt at this stage left (a resumed run redoes it)."""
    for info in list_eval_logs(str(folder.logs_dir), recursive=False):
        try:
            entry = (read_eval_log(info, header_only=True).eval.metadata or {}).get("inspect_tinker") or {}
        except Exception:  # a log a kill cut off mid-write cannot be read: the stage it belongs to is redone
            entry = {"round": round_no, "stage": stage}
        if entry.get("round") == round_no and entry.get("stage") == stage:
            Path(info.name.removeprefix("file://")).unlink(missing_ok=True)


def _train_round(backend, examples, config: Config, folder: RunFolder, events: EventLog,
                 state: RunState, stop: GracefulStop, save_state) -> TrainedRound:
    """Run the remaining optimizer steps of the round in progress, saving on request."""
    events.emit(
        "round_started", round=state.round, max_rounds=config.max_rounds, learning_rate=state.learning_rate,
        steps=state.steps_per_round, lora_rank=state.lora_rank, examples=len(examples),
        resumed_at_step=state.step_in_round,
    )
    t0, tokens, pads, start = time.time(), 0, 0, state.global_step
    losses, rates = [], []
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
        losses.append(metrics.loss)
        rates.append(step_rate)
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
    tokens_per_second = tokens / max(seconds, 1e-9)
    events.emit(
        "round_trained", round=state.round, seconds=seconds, tokens_per_second=tokens_per_second,
        pad_fraction=pads / max(tokens + pads, 1),
    )
    return TrainedRound(losses=losses, learning_rates=rates, final_loss=state.last_loss, global_step_start=start,
                        lora_rank=state.lora_rank, examples=len(examples), tokens_per_second=tokens_per_second)


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


def _peak_memory_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
