"""What a resume needs, as plain data: where the run is and what it has done so far.

state.json is replaced atomically after every durable point (baseline evaluated, partial
checkpoint, round trained, round decided), so a kill at any moment leaves the last one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal


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
    checkpoint: str | None = None  # the folder to restore on resume; None: fresh adapter
    round_start_checkpoint: str | None = None  # what the round in progress started from
    baseline_done: bool = False
    elapsed_seconds: float = 0.0  # wall time of the run, across resumes
    history: list[RoundRecord] = field(default_factory=list)
    # Records added to the training data by failure-driven selection, in order
    # (DataAddition.to_dict()); the training examples are the file's plus these.
    data_additions: list[dict] = field(default_factory=list)

    @property
    def step_in_round(self) -> int:
        return self.global_step - self.round_start_step

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunState":
        return cls(**{**data, "history": [RoundRecord(**r) for r in data.get("history", [])]})


def best_round(history: list[RoundRecord], trained_only: bool = False) -> RoundRecord | None:
    """The round that met the bar, else the one with the highest score; the earlier one wins a tie.

    Round 0 is the base model itself, without an adapter: it is the best round when no trained
    round beats it. `trained_only`: the best of the trained rounds (what a rollback can load).
    A round can score higher than the round that met the bar and still miss a task's own bar.
    """
    candidates = [r for r in history if r.round > 0 or not trained_only]
    return max(candidates, key=lambda r: (r.bar_met, r.score, -r.round)) if candidates else None
