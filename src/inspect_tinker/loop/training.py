"""A round's training: its optimizer steps (`Trainer`), run as an Inspect task so that `inspect view`
shows it beside the evaluations (`training_stage`).

`train_round_<n>` runs on model "none" and has one sample. Its solver runs the round's
optimizer steps; the plan records the learning rate, steps, batch size and LoRA rank as the
solver's parameters; the score (`final_loss`) is the round's last loss, and the sample's
metadata holds the per-step losses and learning rates. What the training raised, a stop
request included, is kept in `TrainingOutcome.error`, because Inspect turns a solver's exception
into a sample error and the loop must re-raise the real one.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalLog
from inspect_ai.scorer import Score, Target, mean, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver

from inspect_tinker.data.batching import batch_for_step, epoch_of_step
from inspect_tinker.data.render import TokenizedExample
from inspect_tinker.loop.graceful_stop import GracefulStop
from inspect_tinker.loop.stages import drop_stage_logs
from inspect_tinker.policies.schedule import Schedule, schedule_multiplier
from inspect_tinker.provider.backend import Backend
from inspect_tinker.tracking import EventLog, RunFolder, RunState, checkpoint_address, write_checkpoint
from inspect_tinker.tracking.task_metadata import stage_labels


@dataclass(frozen=True)
class TrainingSettings:
    """How a run's rounds train (the configuration's keys of the same names state the defaults)."""

    batch_size: int
    seed: int  # of the data order
    lr_schedule: Schedule
    warmup_steps: int
    save_every_steps: int | None
    max_rounds: int
    threshold: float  # the run's bar, which every stage's metadata carries


@dataclass
class TrainedRound:
    """What one training stage did; `metadata()` is the sample metadata the log shows."""

    losses: list[float]
    learning_rates: list[float]
    final_loss: float | None  # the round's last loss (a resumed round may have had no step left)
    global_step_start: int
    lora_rank: int
    examples: int
    tokens_per_second: float

    rl_steps: list[dict] | None = None  # an RL round's steps: mean reward, groups skipped, clip fraction, KL

    def metadata(self) -> dict:
        return {"final_loss": self.final_loss, "losses": self.losses, "learning_rates": self.learning_rates, "steps": len(self.losses),
                "global_step_start": self.global_step_start, "lora_rank": self.lora_rank,
                "examples": self.examples, "tokens_per_second": self.tokens_per_second,
                **({"rl_steps": self.rl_steps} if self.rl_steps is not None else {})}


@dataclass
class TrainingOutcome:
    trained: TrainedRound | None = None
    error: BaseException | None = field(default=None, repr=False)


@scorer(metrics=[mean()], name="final_loss")
def final_loss():
    """The training round's last loss (lower is better; not a 0..1 score)."""

    async def score(state: TaskState, target: Target) -> Score:
        losses, value = state.metadata.get("losses", []), state.metadata.get("final_loss")
        return Score(value=value if value is not None else float("nan"),
                     explanation=f"{len(losses)} steps; losses {', '.join(f'{x:.4f}' for x in losses)}")

    return score


def training_task(round_no: int, train: Callable[[], TrainedRound], *, learning_rate: float, steps: int,
                  batch_size: int, lora_rank: int, examples: int, metadata: dict, tags: list[str],
                  what: str | None = None) -> tuple[Task, TrainingOutcome]:
    """The task `train_round_<round_no>` and the outcome its solver fills in when Inspect runs it;
    `what` is its one sample's input (by default, the SFT round's steps)."""
    outcome = TrainingOutcome()

    # Defined here, around `train`, so that the plan records only the parameters a person reads.
    # Inspect names it inspect_tinker/train_round (the package it is defined in).
    @solver(name="train_round")
    def train_round(learning_rate: float, steps: int, batch_size: int, lora_rank: int, examples: int) -> Solver:
        """Run the round's optimizer steps once; the parameters are what the log's plan shows."""

        async def solve(state: TaskState, generate: Generate) -> TaskState:
            try:
                # In the event loop's own thread, not a worker: a stop signal reaches the training
                # there as it does outside Inspect, and nothing else runs during a training stage.
                outcome.trained = train()
            except BaseException as err:
                outcome.error = err
                raise
            state.metadata.update(outcome.trained.metadata())
            return state

        return solve

    what = what or (f"Round {round_no}: {steps} optimizer steps of {batch_size} examples (of {examples}) "
                    f"at learning rate {learning_rate:g}, LoRA rank {lora_rank}")
    task = Task(
        name=f"train_round_{round_no}",
        dataset=[Sample(id=f"round-{round_no}", input=what, target="")],
        solver=train_round(learning_rate, steps, batch_size, lora_rank, examples),
        scorer=final_loss(),
        model="none",
        metadata=metadata,
        tags=tags,
    )
    return task, outcome


@dataclass
class Trainer:
    """Runs the optimizer steps of a run's rounds on `backend`, recording each step in `events`,
    saving partial checkpoints (every `save_every_steps`, and on a stop request) and the round's
    sealed checkpoint in `folder`. `save(state)` makes a state durable."""

    backend: Backend
    settings: TrainingSettings
    folder: RunFolder
    events: EventLog
    stop: GracefulStop
    save: Callable[[RunState], None]

    def train_round(self, state: RunState, examples: list[TokenizedExample]) -> TrainedRound:
        """Run the remaining optimizer steps of the round in progress on `examples`; `state` advances step by step."""
        s, backend, events = self.settings, self.backend, self.events
        events.emit(
            "round_started", round=state.round, max_rounds=s.max_rounds, learning_rate=state.learning_rate,
            steps=state.steps_per_round, lora_rank=state.lora_rank, examples=len(examples),
            resumed_at_step=state.step_in_round,
        )
        t0, tokens, pads, start = time.time(), 0, 0, state.global_step
        losses, rates = [], []
        while state.step_in_round < state.steps_per_round:
            batch = [examples[i] for i in batch_for_step(len(examples), s.batch_size, state.global_step, s.seed)]
            step_rate = self.step_learning_rate(state)
            metrics = backend.forward_backward(batch)
            backend.optim_step(step_rate)
            state.global_step += 1
            state.last_loss = metrics.loss
            losses.append(metrics.loss)
            rates.append(step_rate)
            step_tokens = sum(len(e.input_ids) for e in batch)
            tokens += step_tokens
            state.round_tokens_trained += step_tokens  # durable with the state: a resumed round goes on counting
            pads += metrics.n_pad_tokens
            events.emit(
                "step", round=state.round, step=state.global_step, loss=metrics.loss, target_tokens=metrics.n_tokens,
                learning_rate=step_rate, epoch=epoch_of_step(len(examples), s.batch_size, state.global_step),
            )
            self.after_step(state)
        seconds = time.time() - t0
        tokens_per_second = tokens / max(seconds, 1e-9)
        events.emit(
            "round_trained", round=state.round, seconds=seconds, tokens_per_second=tokens_per_second,
            pad_fraction=pads / max(tokens + pads, 1), tokens_trained=state.round_tokens_trained,
        )
        return TrainedRound(losses=losses, learning_rates=rates, final_loss=state.last_loss, global_step_start=start,
                            lora_rank=state.lora_rank, examples=len(examples), tokens_per_second=tokens_per_second)

    def seal_round(self, state: RunState) -> str:
        """Save the trained round's checkpoint (adapter, optimizer, RNG) as its round folder and move
        `state` on to the round's evaluation; return the checkpoint's address."""
        checkpoint_dir = self.folder.round_dir(state.round)
        adapter = write_checkpoint(self.backend, checkpoint_dir)
        state.phase, state.checkpoint = "evaluating", str(checkpoint_dir)
        self.save(state)
        shutil.rmtree(self.folder.partial_dir, ignore_errors=True)  # superseded by the round's checkpoint
        self.events.emit("checkpoint_saved", round=state.round, path=adapter, checkpoint=str(checkpoint_dir))
        return adapter

    def step_learning_rate(self, state: RunState) -> float:
        """The learning rate of the round's next step: the round's rate times the schedule's multiplier."""
        s = self.settings
        return state.learning_rate * schedule_multiplier(  # per round: its length may change (policies/schedule.py)
            state.global_step, step_in_round=state.step_in_round, round_steps=state.steps_per_round,
            schedule=s.lr_schedule, warmup_steps=s.warmup_steps,
        )

    def after_step(self, state: RunState) -> None:
        """A partial checkpoint after a step that is not the round's last, every `save_every_steps`
        and on a stop request (which then stops the run)."""
        finished = state.step_in_round >= state.steps_per_round
        periodic = self.settings.save_every_steps and state.step_in_round % self.settings.save_every_steps == 0
        if not finished and (periodic or self.stop.requested):
            self._save_partial(state)

    def _save_partial(self, state: RunState) -> None:
        write_checkpoint(self.backend, self.folder.partial_dir)
        state.checkpoint = str(self.folder.partial_dir)
        self.save(state)
        self.events.emit("partial_checkpoint_saved", round=state.round, step=state.global_step)
        if self.stop.requested:
            raise self.stop.interrupted(f"stopped in round {state.round} after step {state.global_step}")


def training_stage(trainer: Trainer, state: RunState, examples: list[TokenizedExample]
                   ) -> Generator[list[Task], list[EvalLog], str]:
    """The training stage of the round in progress: the task `train_round_<n>`, whose solver runs
    `trainer.train_round`; then the round's checkpoint, whose address is returned."""
    folder = trainer.folder
    drop_stage_logs(folder, state.round, "train")  # a training stage a kill cut short, now continued
    start = checkpoint_address(Path(state.checkpoint)) if state.checkpoint else None
    metadata, tags = stage_labels(run=folder.name, run_dir=str(folder.root), round_no=state.round, stage="train",
                                  learning_rate=state.learning_rate, checkpoint=start,
                                  threshold=trainer.settings.threshold)
    task, outcome = training_task(state.round, lambda: trainer.train_round(state, examples),
                                  learning_rate=state.learning_rate, steps=state.steps_per_round,
                                  batch_size=trainer.settings.batch_size, lora_rank=state.lora_rank,
                                  examples=len(examples), metadata=metadata, tags=tags)
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
    return trainer.seal_round(state)

