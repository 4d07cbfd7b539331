"""A round's training as an Inspect task, so that `inspect view` shows it beside the evaluations.

`train_round_<n>` runs on model "none" and has one sample. Its solver runs the round's
optimizer steps (the loop's `train` callable, which does the work and the bookkeeping); the
plan records the learning rate, steps, batch size and LoRA rank as the solver's parameters; the
score (`final_loss`) is the round's last loss, and the sample's metadata holds the per-step
losses and learning rates. What the training raised, a stop request included, is kept in
`TrainingOutcome.error`, because Inspect turns a solver's exception into a sample error and the
loop must re-raise the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import Score, Target, mean, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver


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

    def metadata(self) -> dict:
        return {"final_loss": self.final_loss, "losses": self.losses, "learning_rates": self.learning_rates, "steps": len(self.losses),
                "global_step_start": self.global_step_start, "lora_rank": self.lora_rank,
                "examples": self.examples, "tokens_per_second": self.tokens_per_second}


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
                  batch_size: int, lora_rank: int, examples: int, metadata: dict, tags: list[str]
                  ) -> tuple[Task, TrainingOutcome]:
    """The task `train_round_<round_no>` and the outcome its solver fills in when Inspect runs it."""
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

    what = (f"Round {round_no}: {steps} optimizer steps of {batch_size} examples (of {examples}) "
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
