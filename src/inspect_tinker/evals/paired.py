"""Did a change fix more than it broke? A paired comparison of two evaluations on the samples they share.

Two rounds of a run, or two runs, answer the same questions. Comparing each question with itself
removes the spread between questions that two unpaired intervals both carry, so a difference of a
few samples can be told from noise where overlapping per-round intervals cannot.

- The p-value is the exact two-sided sign test on the samples whose value changed: for 0/1 scores
  that is McNemar's exact test (the fixed against the broken, a fair coin under no change).
- The interval of the difference, for 0/1 scores, is Newcombe's square-and-add interval for paired
  proportions (Newcombe 1998, as Altman's "Statistics with confidence" gives it): the Wilson
  intervals of both scores (evals/uncertainty.py), joined with the correlation of the two
  results. Like Wilson's, it does not collapse to a point when nothing changed or everything did.
  Graded scores get the normal interval of the mean per-sample difference, as `estimate` gives them.

Written here, not taken from scipy, for the reason uncertainty.py gives: a few lines, against a
dependency of tens of megabytes the package does not otherwise need.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from inspect_tinker.evals.uncertainty import CONFIDENCE, standard_error, wilson_interval, z_value


@dataclass(frozen=True)
class PairedComparison:
    """`after` against `before` on the `n` samples both have: the mean values, their difference
    (after - before) with its interval, the p-value of "no change", and which samples turned right
    (`fixed`) or wrong (`broke`), correct meaning a value of at least 0.5."""

    n: int
    before: float
    after: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    fixed: list
    broke: list

    def statistics(self) -> dict:
        """The numbers without the sample lists (which a TaskResult keeps on its own)."""
        return {k: getattr(self, k) for k in ("n", "before", "after", "difference", "ci_low", "ci_high", "p_value")}


def compare_paired(
    before: Mapping[Hashable, float], after: Mapping[Hashable, float], confidence: float = CONFIDENCE,
) -> PairedComparison:
    """Compare per-sample values in [0, 1], keyed by sample (an id, or task + id + epoch), on the keys
    both hold (in `after`'s order). No shared key: n 0, difference 0, interval [-1, 1], p-value 1."""
    keys = [k for k in after if k in before]
    pairs = [(before[k], after[k]) for k in keys]
    n = len(pairs)
    fixed = [k for k, (b, a) in zip(keys, pairs) if b < 0.5 <= a]
    broke = [k for k, (b, a) in zip(keys, pairs) if a < 0.5 <= b]
    if n == 0:
        return PairedComparison(0, 0.0, 0.0, 0.0, -1.0, 1.0, 1.0, [], [])
    mean_before, mean_after = sum(b for b, _ in pairs) / n, sum(a for _, a in pairs) / n
    difference = mean_after - mean_before
    if all(v in (0.0, 1.0) for pair in pairs for v in pair):
        low, high = _paired_proportions_interval(pairs, confidence)
    else:
        se = standard_error([a - b for b, a in pairs])
        half = z_value(confidence) * se if se is not None else math.inf
        low, high = difference - half, difference + half
    p_value = sign_test(sum(a > b for b, a in pairs), sum(a < b for b, a in pairs))
    return PairedComparison(n, mean_before, mean_after, difference, max(-1.0, low), min(1.0, high), p_value,
                            fixed, broke)


def sign_test(up: int, down: int) -> float:
    """Two-sided exact p-value of `up` rises against `down` falls when each is equally likely
    (McNemar's exact test when they are the samples fixed and broken): twice the smaller tail of
    Binomial(up + down, 1/2), at most 1."""
    m = up + down
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(up, down) + 1)) / 2**m
    return min(1.0, 2 * tail)


def _paired_proportions_interval(pairs: list[tuple[float, float]], confidence: float) -> tuple[float, float]:
    # Newcombe's interval for p_after - p_before from the 2x2 table of (before, after) results.
    n = len(pairs)
    both = sum(b == 1 and a == 1 for b, a in pairs)
    neither = sum(b == 0 and a == 0 for b, a in pairs)
    broke = sum(b == 1 and a == 0 for b, a in pairs)
    fixed = n - both - neither - broke
    p_b, p_a = (both + broke) / n, (both + fixed) / n
    l_b, u_b = wilson_interval(both + broke, n, confidence)
    l_a, u_a = wilson_interval(both + fixed, n, confidence)
    margins = (both + broke) * (fixed + neither) * (both + fixed) * (broke + neither)
    # The correlation of the two results, continuity-corrected when positive (as Newcombe's method
    # has it): with no sample changed it stays below 1, and the interval keeps a width.
    covariance = both * neither - broke * fixed
    corrected = covariance - n / 2 if covariance > n / 2 else (covariance if covariance < 0 else 0.0)
    phi = corrected / math.sqrt(margins) if margins else 0.0
    difference = p_a - p_b
    below = math.sqrt(max(0.0, (p_a - l_a) ** 2 - 2 * phi * (p_a - l_a) * (u_b - p_b) + (u_b - p_b) ** 2))
    above = math.sqrt(max(0.0, (u_a - p_a) ** 2 - 2 * phi * (u_a - p_a) * (p_b - l_b) + (p_b - l_b) ** 2))
    return difference - below, difference + above
