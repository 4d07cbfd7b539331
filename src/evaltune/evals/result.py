"""Plain results of one evaluation, extracted from Inspect logs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class SampleResult:
    id: str
    question: str
    expected: str
    answer: str
    correct: bool


@dataclass
class TaskResult:
    name: str
    score: float
    stderr: float | None
    n_samples: int
    n_correct: int
    log_path: str
    samples: list[SampleResult] = field(default_factory=list)


@dataclass
class EvalResult:
    """The score of a round (mean of the task scores) and everything behind it."""

    score: float
    tasks: list[TaskResult]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EvalResult":
        tasks = [
            TaskResult(**{**t, "samples": [SampleResult(**s) for s in t["samples"]]}) for t in data["tasks"]
        ]
        return cls(score=data["score"], tasks=tasks)
