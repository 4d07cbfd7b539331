"""How sure a score is: standard error and a confidence interval, from the per-sample values.

0/1 scores get a Wilson score interval: with few samples, or a score near 0 or 1, the
normal interval collapses (12/12 correct would read as 1.00 ± 0.00), the Wilson one does
not. Graded scores (token F1, partial credit) get the normal interval, clipped to [0, 1].
Written here because the formulas are a few lines, while the libraries that carry them
(scipy, statsmodels) would add tens of megabytes for them alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided standard normal quantile: 1.96 for 95 %."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True)
class Estimate:
    """A score with its standard error (None under 2 samples) and confidence interval."""

    score: float
    stderr: float | None
    ci_low: float
    ci_high: float
    n: int


def wilson_interval(correct: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion `correct / n`."""
    if n == 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = correct / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def standard_error(values: list[float]) -> float | None:
    """The standard error of the mean of `values` (None under 2): the sample standard deviation
    over sqrt(n), as Inspect's stderr metric computes it."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def estimate(values: list[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean of per-sample values in [0, 1] with its uncertainty."""
    n = len(values)
    if n == 0:
        return Estimate(0.0, None, 0.0, 1.0, 0)
    score = sum(values) / n
    se = standard_error(values)
    if all(v in (0.0, 1.0) for v in values):
        low, high = wilson_interval(sum(values), n, confidence)
    else:
        half = z_value(confidence) * (se or 0.0)
        low, high = max(0.0, score - half), min(1.0, score + half)
    return Estimate(score, se, low, high, n)


def reported_estimate(score: float, stderr: float | None, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """A score a task's own metric computed, which is not the mean of its sample values: the normal
    interval of the `stderr` the task reports beside it, or the whole of [0, 1] when it reports none
    (nothing here knows how such a metric varies)."""
    if stderr is None:
        return Estimate(score, None, 0.0, 1.0, n)
    half = z_value(confidence) * stderr
    return Estimate(score, stderr, max(0.0, score - half), min(1.0, score + half), n)


def weighted_estimate(parts: list[tuple[Estimate, float]], confidence: float = CONFIDENCE) -> Estimate:
    """Weighted mean of independent task estimates `(estimate, weight)`.

    One task: its own estimate. Several: a normal interval whose spread combines each
    task's interval width (half-width / z, so a 12/12 task still counts as uncertain).
    """
    if len(parts) == 1:
        return parts[0][0]
    total = sum(w for _, w in parts)
    score = sum(e.score * w for e, w in parts) / total
    z = z_value(confidence)
    spread = math.sqrt(sum((w / total * (e.ci_high - e.ci_low) / (2 * z)) ** 2 for e, w in parts))
    ses = [e.stderr for e, _ in parts]
    se = None if None in ses else math.sqrt(sum((w / total * s) ** 2 for (_, w), s in zip(parts, ses)))
    return Estimate(score, se, max(0.0, score - z * spread), min(1.0, score + z * spread), sum(e.n for e, _ in parts))
