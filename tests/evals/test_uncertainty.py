"""Uncertainty figures: Wilson intervals for 0/1 scores, normal ones for graded scores, Inspect's stderr."""

import pytest
from inspect_ai.scorer import SampleScore, Score, stderr

from inspect_tinker.evals.uncertainty import estimate, weighted_estimate, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # reference values from the Wilson formula at 95 % (z = 1.959964)
        (12, 12, 0.7575, 1.0),
        (8, 10, 0.4902, 0.9433),
        (0, 20, 0.0, 0.1611),
        (10, 12, 0.5520, 0.9530),
    ],
)
def test_wilson_intervals_match_reference_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_a_perfect_score_on_few_samples_is_not_reported_as_certain():
    e = estimate([1.0] * 12)
    assert e.score == 1.0 and e.stderr == 0.0
    assert e.ci_low < 0.76  # a normal interval would claim [1, 1]


def test_the_standard_error_equals_inspects_stderr_metric():
    values = [1.0, 0.0, 1.0, 1.0, 0.5, 0.0, 1.0]
    scores = [SampleScore(score=Score(value=v), sample_id=i) for i, v in enumerate(values)]
    assert estimate(values).stderr == pytest.approx(stderr()(scores))


def test_graded_scores_get_a_normal_interval_clipped_to_0_1():
    e = estimate([0.9, 1.0, 0.8, 1.0])
    assert e.ci_high == 1.0 and e.ci_low == pytest.approx(e.score - 1.959964 * e.stderr, abs=1e-4)


def test_the_aggregate_interval_widens_with_each_tasks_uncertainty():
    a, b = estimate([1.0] * 10), estimate([1.0, 0.0] * 5)
    combined = weighted_estimate([(a, 1.0), (b, 1.0)])
    assert combined.score == pytest.approx(0.75) and combined.n == 20
    assert combined.ci_low < 0.75 < combined.ci_high
    assert weighted_estimate([(a, 1.0)]) == a  # one task: its own interval
