"""Plain results of one evaluation, extracted from Inspect logs.

`EvalResult.to_dict()` is the body of the `eval_result` event (events.jsonl), which the
console and reports read. Its shape, field by field:

    round          int    0 = the untrained baseline (added by the loop, with `seconds`)
    score          float  weighted mean of the gating tasks' scores, 0..1 (the number the bar is held against)
    stderr         float | null   standard error of `score` (null with fewer than 2 samples)
    ci_low, ci_high float  95 % interval of `score` (see evals/uncertainty.py)
    confidence     float  0.95
    n_samples      int    samples behind `score` (gating tasks only)
    tasks          list of:
        name       str    task name, unique in the run
        role       str    "gate" (counts towards the bar), "confirm" (reported, never gates,
                          never feeds data selection) or "guard" (the packaged regression guard)
        weight     float  weight in `score` (gating tasks)
        threshold  float | null   the task's own bar
        scorer     str    what scored it, e.g. "answer_included", "model_graded (judge: ...)"
        score      float  the task's own headline metric (evals/scores.py): the mean of its scored samples'
                          values for a mean such as `accuracy`
        stderr, ci_low, ci_high   as above, for this task
        n_samples  int    samples evaluated
        n_correct  int    samples whose value is >= 0.5
        n_unscored int    samples the scorer gave no value (a judge's unreadable grade); left out of the
                          score, as Inspect leaves them out of every metric
        generation dict   the settings answers were generated with: max_tokens, temperature,
                          system_prompt, stop, seed
        log_path   str    the Inspect log (`inspect view` opens it)
        compared_with int | null  the round `fixed` / `broke` refer to (the previous evaluation)
        fixed      list[str]  ids of samples wrong then and right now
        broke      list[str]  ids of samples right then and wrong now
        paired     dict | null  the paired comparison with that round on the samples both evaluated
                          (evals/paired.py): n, before, after (mean values over those samples),
                          difference (after - before), ci_low, ci_high (its 95 % interval), p_value
                          (McNemar's exact test for 0/1 scores: no change)
        samples    list of:
            id, question, expected, answer   str
            epoch    int    the Inspect epoch it was answered in (1 unless the task repeats samples)
            value    float  0..1 (1 = right; graded scorers give fractions)
            correct  bool   value >= 0.5
            scored   bool   false when the scorer gave no value
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from inspect_tinker.evals.scores import TaskScore
from inspect_tinker.evals.uncertainty import CONFIDENCE, Estimate, estimate, reported_estimate, weighted_estimate


@dataclass
class SampleResult:
    id: str
    question: str
    expected: str
    answer: str
    value: float
    correct: bool
    scored: bool = True
    epoch: int = 1


@dataclass
class TaskResult:
    name: str
    role: str
    weight: float
    threshold: float | None
    scorer: str
    score: float
    stderr: float | None
    ci_low: float
    ci_high: float
    n_samples: int
    n_correct: int
    n_unscored: int
    generation: dict
    log_path: str
    compared_with: int | None = None
    fixed: list[str] = field(default_factory=list)
    broke: list[str] = field(default_factory=list)
    paired: dict | None = None
    samples: list[SampleResult] = field(default_factory=list)

    @classmethod
    def from_samples(
        cls, samples: list[SampleResult], *, name: str, role: str = "gate", weight: float = 1.0,
        threshold: float | None = None, scorer: str = "answer_included", generation: dict | None = None,
        log_path: str = "", headline: TaskScore | None = None,
    ) -> "TaskResult":
        """A task's result from its samples and its log's `headline` score: the mean value of the
        scored samples with its uncertainty (the headline, when that is another metric), and the counts."""
        est = estimate([s.value for s in samples if s.scored])
        if headline is not None and abs(headline.value - est.score) > 1e-9:  # not a mean of the sample values
            est = reported_estimate(headline.value, headline.stderr, est.n)
        return cls(
            name=name, role=role, weight=weight, threshold=threshold, scorer=scorer,
            score=est.score, stderr=est.stderr, ci_low=est.ci_low, ci_high=est.ci_high,
            n_samples=len(samples), n_correct=sum(s.correct for s in samples),
            n_unscored=sum(not s.scored for s in samples), generation=generation or {}, log_path=log_path,
            samples=samples,
        )

    @property
    def estimate(self) -> Estimate:
        return Estimate(self.score, self.stderr, self.ci_low, self.ci_high, self.n_samples)


@dataclass
class EvalResult:
    """The score of an evaluation (weighted mean of the gating tasks) and everything behind it."""

    score: float
    stderr: float | None
    ci_low: float
    ci_high: float
    confidence: float
    n_samples: int
    tasks: list[TaskResult]

    @classmethod
    def combine(cls, tasks: list[TaskResult]) -> "EvalResult":
        """The evaluation of `tasks`: its score is the weighted mean of the gating tasks' scores."""
        overall = weighted_estimate([(t.estimate, t.weight) for t in tasks if t.role == "gate"])
        return cls(
            score=overall.score, stderr=overall.stderr, ci_low=overall.ci_low, ci_high=overall.ci_high,
            confidence=CONFIDENCE, n_samples=overall.n, tasks=tasks,
        )

    def task(self, name: str) -> TaskResult | None:
        return next((t for t in self.tasks if t.name == name), None)

    def tasks_with_role(self, role: str) -> list[TaskResult]:
        return [t for t in self.tasks if t.role == role]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EvalResult":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        tasks = [
            TaskResult(**{**t, "samples": [SampleResult(**s) for s in t["samples"]]}) for t in data["tasks"]
        ]
        return cls(**{**fields, "tasks": tasks})
