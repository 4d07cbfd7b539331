"""What a resume needs, as plain data: where the run is and what it has done so far.

state.json is replaced atomically after every durable point (baseline evaluated, partial
checkpoint, round trained, round decided), so a kill at any moment leaves the last one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from inspect_tinker.policies import GateVerdict, RoundDecision


@dataclass(frozen=True)
class RoundUsage:
    """What one round used, in the units the Tinker service bills: tokens of the training
    examples read by the forward and backward passes (`tokens_trained`), and of the evaluation's
    prompts (`tokens_prefilled`) and sampled completions (`tokens_sampled`). `cost` is their
    price at the configured `price_per_million_tokens`, `total_cost` the run's so far with
    this round; both None without prices."""

    tokens_trained: int = 0
    tokens_prefilled: int = 0
    tokens_sampled: int = 0
    cost: float | None = None
    total_cost: float | None = None


@dataclass
class RoundRecord:
    round: int  # 0 is the untrained baseline
    learning_rate: float | None
    final_loss: float | None
    score: float
    adapter: str | None
    checkpoint: str | None = None  # the round's checkpoint folder (adapter + trainer state)
    global_step: int = 0
    bar_met: bool = False  # the gate passed: the aggregate and every task's own bar
    # What the round used (RoundUsage's fields, flat so that state.json reads plainly).
    tokens_trained: int = 0
    tokens_prefilled: int = 0
    tokens_sampled: int = 0
    cost: float | None = None
    total_cost: float | None = None


@dataclass
class RunState:
    round: int = 1  # the round in progress, or the next to start
    phase: Literal["training", "evaluating", "finished"] = "training"
    learning_rate: float = 0.0  # of the round in progress
    steps_per_round: int = 0  # of the round in progress (policy `more_steps` raises it)
    lora_rank: int = 0  # of the round in progress (policy `grow_rank` raises it)
    global_step: int = 0  # optimizer steps completed in the whole run
    round_start_step: int = 0  # global_step when the round in progress began
    last_loss: float | None = None
    round_tokens_trained: int = 0  # training tokens of the round in progress so far (RoundUsage.tokens_trained)
    checkpoint: str | None = None  # the folder to restore on resume; None: fresh adapter
    round_start_checkpoint: str | None = None  # what the round in progress started from
    baseline_done: bool = False
    elapsed_seconds: float = 0.0  # wall time of the run, across resumes
    history: list[RoundRecord] = field(default_factory=list)
    # Records added to the training data by failure-driven selection, in order
    # (DataAddition.to_dict()); the training examples are the file's plus these.
    data_additions: list[dict] = field(default_factory=list)
    # The records the round in progress trains harder (policies/focus.py; FocusRecord.to_dict()),
    # and the steps of steps_per_round added to carry their extra copies (the policy chose the rest).
    focus: list[dict] = field(default_factory=list)
    focus_steps: int = 0

    @property
    def step_in_round(self) -> int:
        return self.global_step - self.round_start_step

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunState":
        return cls(**{**data, "history": [RoundRecord(**r) for r in data.get("history", [])]})


def next_state(state: RunState, verdict: GateVerdict, decision: RoundDecision, *, adapter: str | None = None,
               data_additions: list[dict] = (), focus: list[dict] = (), usage: RoundUsage = RoundUsage()) -> RunState:
    """The run's state once the evaluation in progress has been gated (`verdict`) and decided
    (`decision`): that of the round just trained (phase `evaluating`), or else of the baseline,
    which is evaluated before any training.

    `adapter` is the trained round's checkpoint address, `data_additions` what data selection
    added after it (DataAddition.to_dict()), `focus` the records the next round trains harder
    (FocusRecord.to_dict()), `usage` what the round used. The evaluated round joins the history; the run is
    finished when the decision stops it; else, after a trained round, the next round starts with
    the decision's hyperparameters, from the checkpoint of the round it rolls back to, if any.
    `state` itself is not changed.
    """
    trained = state.phase == "evaluating"
    record = RoundRecord(
        round=state.round if trained else 0, learning_rate=state.learning_rate if trained else None,
        final_loss=state.last_loss if trained else None, score=verdict.score, adapter=adapter if trained else None,
        checkpoint=state.checkpoint if trained else None, global_step=state.global_step if trained else 0,
        bar_met=verdict.passed, **asdict(usage),
    )
    history = [*state.history, record]
    done = replace(state, history=history, baseline_done=state.baseline_done or not trained,
                   data_additions=[*state.data_additions, *data_additions])
    if decision.stop:
        return replace(done, phase="finished")
    if not trained:  # round 1 starts as the run was configured
        return done
    checkpoint = state.checkpoint
    if decision.rollback_to is not None:
        checkpoint = next(r.checkpoint for r in history if r.round == decision.rollback_to)
    return replace(
        done, round=state.round + 1, phase="training", learning_rate=decision.next_learning_rate,
        steps_per_round=decision.next_steps_per_round, lora_rank=decision.next_lora_rank,
        round_start_step=state.global_step, checkpoint=checkpoint, round_start_checkpoint=checkpoint,
        round_tokens_trained=0, focus=list(focus), focus_steps=decision.focus_steps,
    )
