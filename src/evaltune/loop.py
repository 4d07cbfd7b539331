"""The round loop: train, checkpoint, evaluate, decide; until the bar is met or rounds run out.

Read top to bottom, `run` is the whole algorithm; every step it calls lives in a module
named for that step.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict

from evaltune.config import Config
from evaltune.data import batch_for_step, load_training_records, prepare_training_data
from evaltune.engines import create_engine
from evaltune.evals import build_tasks, evaluate
from evaltune.policies import decide
from evaltune.summary import RoundRecord, summarize
from evaltune.tracking import EventLog, RunFolder, Sink


def run(config: Config, sinks: list[Sink] | None = None) -> dict:
    """Run the evaluation-driven loop described by `config`; return the summary dict.

    The summary's `exit_code` is 0 when the bar was met and 1 when it was not.
    """
    started = time.time()
    folder = RunFolder.create(config.output_dir, config.run_name)
    folder.write_config(config.model_dump(mode="json"))
    events = EventLog(folder, sinks)
    events.emit("run_started", run_dir=str(folder.root), config=brief(config))
    try:
        return _rounds(config, folder, events, started)
    except KeyboardInterrupt:
        events.emit("interrupted", message="stopped by the user")
        raise
    except Exception as err:
        events.emit("error", message=f"{err.__class__.__name__}: {err}")
        raise


def _rounds(config: Config, folder: RunFolder, events: EventLog, started: float) -> dict:
    # Everything that can fail on bad input is checked before the model loads.
    records = load_training_records(config.train_file, config.strict)
    tasks = build_tasks(config.eval_tasks, config.generation)

    t0 = time.time()
    engine = create_engine(config)
    events.emit("engine_ready", info=asdict(engine.info), seconds=time.time() - t0)

    examples, data_report = prepare_training_data(records, engine.tokenizer, config.max_seq_length)
    events.emit("data_prepared", **data_report.to_dict())

    history: list[RoundRecord] = []
    if config.baseline_eval:
        t0 = time.time()
        baseline = evaluate(engine, tasks, config, folder.eval_dir(0), f"{folder.name}-round-0")
        events.emit("eval_result", round=0, seconds=time.time() - t0, **baseline.to_dict())
        history.append(RoundRecord(round=0, learning_rate=None, final_loss=None, score=baseline.score, adapter=None))

    learning_rate = config.learning_rate
    step = 0
    for round_no in range(1, config.max_rounds + 1):
        events.emit(
            "round_started", round=round_no, max_rounds=config.max_rounds,
            learning_rate=learning_rate, steps=config.steps_per_round,
        )
        t0, tokens = time.time(), 0
        for _ in range(config.steps_per_round):
            batch = [examples[i] for i in batch_for_step(len(examples), config.batch_size, step, config.seed)]
            metrics = engine.forward_backward(batch)
            engine.optim_step(learning_rate)
            step += 1
            tokens += sum(len(e.input_ids) for e in batch)
            events.emit(
                "step", round=round_no, step=step, loss=metrics.loss,
                target_tokens=metrics.n_tokens, learning_rate=learning_rate,
                epoch=step * config.batch_size / len(examples),
            )
        train_seconds = time.time() - t0
        adapter = engine.save_checkpoint(folder.round_dir(round_no))
        events.emit(
            "checkpoint_saved", round=round_no, path=adapter,
            train_seconds=train_seconds, tokens_per_second=tokens / train_seconds,
        )

        t0 = time.time()
        result = evaluate(engine, tasks, config, folder.eval_dir(round_no), f"{folder.name}-round-{round_no}")
        events.emit("eval_result", round=round_no, seconds=time.time() - t0, **result.to_dict())

        decision = decide(
            result.score, round_no, learning_rate,
            threshold=config.eval_threshold, lr_decay=config.lr_decay, max_rounds=config.max_rounds,
        )
        events.emit("decision", round=round_no, score=result.score, threshold=config.eval_threshold, **asdict(decision))
        history.append(RoundRecord(round_no, learning_rate, metrics.loss, result.score, adapter))
        folder.write_state(
            {"last_completed_round": round_no, "global_step": step,
             "next_learning_rate": decision.next_learning_rate, "history": [asdict(h) for h in history]}
        )
        if decision.stop:
            break
        learning_rate = decision.next_learning_rate

    summary = summarize(history, config, folder, wall_seconds=time.time() - started, peak_memory_mb=_peak_memory_mb())
    folder.write_summary(summary)
    events.emit("run_finished", **summary)
    return summary


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
