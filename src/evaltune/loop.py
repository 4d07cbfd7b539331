"""The round loop: train, checkpoint, evaluate, decide; until the bar is met or rounds run out.

Read top to bottom, `run` and `_rounds` are the whole algorithm; every step they call lives
in a module named for that step. The run's position is kept in a RunState that is written
to the run folder at every durable point, so `resume` continues exactly where a killed run
stopped.
"""

from __future__ import annotations

import resource
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from evaltune.config import Config
from evaltune.data import batch_for_step, load_training_records, prepare_training_data
from evaltune.engines import create_engine
from evaltune.errors import UsageError
from evaltune.evals import build_tasks, evaluate
from evaltune.graceful_stop import GracefulStop, RunInterrupted
from evaltune.learning_rate import resolve_learning_rate
from evaltune.policies import decide
from evaltune.summary import summarize
from evaltune.tracking import (
    EventLog, RoundRecord, RunFolder, RunState, Sink, best_round, checkpoint_address, write_checkpoint,
)
from evaltune.tracking.resume import restore_point


def run(
    config: Config, sinks: list[Sink] | None = None, *, resume: Path | None = None, changed_keys: list[str] = ()
) -> dict:
    """Run the evaluation-driven loop described by `config`; return the summary dict.

    With `resume`, continue the run in that folder from its last durable point (the caller
    has compared `config` with the run's configuration; `changed_keys` are the accepted
    differences, recorded as an event). The summary's `exit_code` is 0
    when the bar was met and 1 when it was not. Ctrl-C stops at the next safe point and
    raises RunInterrupted.
    """
    if resume is None:
        folder, state = RunFolder.create(config.output_dir, config.run_name), RunState(learning_rate=config.learning_rate)
        folder.write_config(config.model_dump(mode="json"))
    else:
        folder = RunFolder.open(resume)
        state = folder.read_state() or RunState(learning_rate=config.learning_rate)
        if state.phase == "finished":
            raise UsageError(f"{folder.root} has already finished (see summary.json); there is nothing to resume.")
    folder.acquire()
    events = EventLog(folder, sinks)
    events.emit("run_started", run_dir=str(folder.root), config=brief(config), resumed=resume is not None)
    if changed_keys:
        events.emit("config_changed", keys=list(changed_keys))
    try:
        with GracefulStop() as stop:
            return _rounds(config, folder, events, state, stop)
    except RunInterrupted as err:
        events.emit("interrupted", message=str(err), resume_command=f"evaltune resume {folder.root}")
        raise
    except KeyboardInterrupt:
        events.emit("interrupted", message="stopped at once by the user", resume_command=f"evaltune resume {folder.root}")
        raise
    except Exception as err:
        events.emit("error", message=f"{err.__class__.__name__}: {err}", resume_command=f"evaltune resume {folder.root}")
        raise
    finally:
        folder.release()


def _rounds(config: Config, folder: RunFolder, events: EventLog, state: RunState, stop: GracefulStop) -> dict:
    started, elapsed_before = time.time(), state.elapsed_seconds

    def save_state() -> None:
        state.elapsed_seconds = elapsed_before + time.time() - started
        folder.write_state(state)

    # Everything that can fail on bad input is checked before the model loads.
    records = load_training_records(config.train_file, config.strict)
    tasks = build_tasks(config.eval_tasks, config.generation)

    t0 = time.time()
    engine = create_engine(config)
    events.emit("engine_ready", info=asdict(engine.info), seconds=time.time() - t0)
    state.learning_rate = resolve_learning_rate(state.learning_rate, engine.info)  # `auto` needs the model

    examples, data_report = prepare_training_data(records, engine.tokenizer, config.max_seq_length)
    events.emit("data_prepared", **data_report.to_dict())

    if state.checkpoint is not None:
        restore_point(folder, state, events)  # falls back past a torn checkpoint
        if state.checkpoint is not None:
            engine.load_checkpoint(Path(state.checkpoint))
        events.emit("resumed", round=state.round, phase=state.phase, global_step=state.global_step, checkpoint=state.checkpoint)

    if config.baseline_eval and not state.baseline_done:
        baseline = _evaluate(engine, tasks, config, folder, events, round_no=0)
        state.history.append(RoundRecord(round=0, learning_rate=None, final_loss=None, score=baseline.score, adapter=None))
        state.baseline_done = True
        save_state()

    bar_met = False
    while state.phase != "finished":
        round_no = state.round
        if state.phase == "training":
            _train_round(engine, examples, config, folder, events, state, stop, save_state)
            checkpoint_dir = folder.round_dir(round_no)
            adapter = write_checkpoint(engine, checkpoint_dir)
            state.phase, state.checkpoint = "evaluating", str(checkpoint_dir)
            save_state()
            shutil.rmtree(folder.partial_dir, ignore_errors=True)  # superseded by the round's checkpoint
            events.emit("checkpoint_saved", round=round_no, path=adapter, checkpoint=str(checkpoint_dir))

        result = _evaluate(engine, tasks, config, folder, events, round_no)
        decision = decide(
            result.score, round_no, state.learning_rate,
            threshold=config.eval_threshold, lr_decay=config.lr_decay, max_rounds=config.max_rounds,
        )
        state.history.append(
            RoundRecord(round_no, state.learning_rate, state.last_loss, result.score,
                        adapter=checkpoint_address(folder.round_dir(round_no)),  # a path, or tinker://...
                        checkpoint=str(folder.round_dir(round_no)), global_step=state.global_step)
        )
        best = best_round(state.history)
        rollback = config.on_regression == "rollback" and result.score < best.score and not decision.stop
        events.emit(
            "decision", round=round_no, score=result.score, threshold=config.eval_threshold,
            best_round=best.round, rollback_to=best.round if rollback else None, **asdict(decision),
        )
        if rollback:
            engine.load_checkpoint(Path(best.checkpoint))
            state.checkpoint = best.checkpoint
        folder.prune_trainer_states(keep={r.round for r in state.history[-config.keep_last:]} | {best.round})

        bar_met = decision.bar_met
        if decision.stop:
            state.phase = "finished"
        else:
            state.round, state.phase = round_no + 1, "training"
            state.learning_rate, state.round_start_step = decision.next_learning_rate, state.global_step
            state.round_start_checkpoint = state.checkpoint
        save_state()
        if stop.requested and not decision.stop:
            raise RunInterrupted(f"stopped after round {round_no}")

    summary = summarize(
        state.history, config, folder, bar_met=bar_met,
        wall_seconds=elapsed_before + time.time() - started, peak_memory_mb=_peak_memory_mb(),
    )
    folder.write_summary(summary)
    events.emit("run_finished", **summary)
    return summary


def _train_round(engine, examples, config: Config, folder: RunFolder, events: EventLog,
                 state: RunState, stop: GracefulStop, save_state) -> None:
    """Run the remaining optimizer steps of the round in progress, saving on request."""
    events.emit(
        "round_started", round=state.round, max_rounds=config.max_rounds, learning_rate=state.learning_rate,
        steps=config.steps_per_round, resumed_at_step=state.step_in_round,
    )
    t0, tokens = time.time(), 0
    while state.step_in_round < config.steps_per_round:
        batch = [examples[i] for i in batch_for_step(len(examples), config.batch_size, state.global_step, config.seed)]
        metrics = engine.forward_backward(batch)
        engine.optim_step(state.learning_rate)
        state.global_step += 1
        state.last_loss = metrics.loss
        tokens += sum(len(e.input_ids) for e in batch)
        events.emit(
            "step", round=state.round, step=state.global_step, loss=metrics.loss, target_tokens=metrics.n_tokens,
            learning_rate=state.learning_rate, epoch=state.global_step * config.batch_size / len(examples),
        )
        finished = state.step_in_round >= config.steps_per_round
        periodic = config.save_every_steps and state.step_in_round % config.save_every_steps == 0
        if not finished and (periodic or stop.requested):
            write_checkpoint(engine, folder.partial_dir)
            state.checkpoint = str(folder.partial_dir)
            save_state()
            events.emit("partial_checkpoint_saved", round=state.round, step=state.global_step)
            if stop.requested:
                raise RunInterrupted(f"stopped in round {state.round} after step {state.global_step}")
    seconds = time.time() - t0
    events.emit("round_trained", round=state.round, seconds=seconds, tokens_per_second=tokens / max(seconds, 1e-9))


def _evaluate(engine, tasks, config: Config, folder: RunFolder, events: EventLog, round_no: int):
    shutil.rmtree(folder.eval_dir(round_no), ignore_errors=True)  # logs of an evaluation a kill cut short
    t0 = time.time()
    result = evaluate(engine, tasks, config, folder.eval_dir(round_no), f"{folder.name}-round-{round_no}")
    events.emit("eval_result", round=round_no, seconds=time.time() - t0, **result.to_dict())
    return result


def brief(config: Config) -> dict:
    """The few configuration values a person wants to see at the start of a run."""
    return {
        "base_model": config.base_model,
        "engine": config.engine,
        "train_file": str(config.train_file),
        "eval_tasks": [t.display_name for t in config.eval_tasks],
        "max_rounds": config.max_rounds,
        "steps_per_round": config.steps_per_round,
        "batch_size": config.batch_size,
        "eval_threshold": config.eval_threshold,
        "learning_rate": config.learning_rate,
        "lr_decay": config.lr_decay,
    }


def _peak_memory_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
