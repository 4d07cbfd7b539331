"""The paired comparison (evals/paired.py) against hand-computed cases and scipy's exact binomial test."""

from __future__ import annotations

import math

import pytest

from inspect_tinker.evals.paired import compare_paired, sign_test

Z = 1.959964  # two-sided 95 %


def test_mcnemar_exact_on_nine_fixed_and_one_broken():
    # Under no change each of the 10 changed samples is a fair coin: P(X <= 1) = (1 + 10) / 2**10, doubled.
    assert sign_test(9, 1) == pytest.approx(22 / 1024)
    assert sign_test(1, 9) == pytest.approx(22 / 1024)
    assert sign_test(3, 3) == 1.0
    assert sign_test(0, 0) == 1.0


def test_sign_test_matches_scipy_binomtest():
    stats = pytest.importorskip("scipy.stats")  # a bench dependency, not the package's
    for up in range(0, 16):
        for down in range(0, 16):
            if up + down:
                assert sign_test(up, down) == pytest.approx(stats.binomtest(up, up + down, 0.5).pvalue, rel=1e-9), (up, down)


def test_everything_fixed_keeps_a_lower_bound_below_one():
    # 10 samples wrong before, all right after: p 0 -> 1, one margin of the 2x2 table is empty so the
    # correlation is 0, and the lower bound is 1 - sqrt(u0**2 + (1 - l1)**2) with the Wilson bounds
    # u0 = z**2 / (10 + z**2) = 0.277533 of 0/10 and l1 = 1 - u0 of 10/10: 1 - 0.392493.
    result = compare_paired({i: 0.0 for i in range(10)}, {i: 1.0 for i in range(10)})
    assert (result.n, result.difference, len(result.fixed), result.broke) == (10, 1.0, 10, [])
    assert result.ci_low == pytest.approx(0.607507, abs=1e-5)
    assert result.ci_high == 1.0
    assert result.p_value == pytest.approx(2 / 1024)


def test_nothing_changed_still_has_an_interval_around_zero():
    # 5 right and 5 wrong both times: the covariance 5*5 - 0 = 25 corrected by n/2 = 5 gives the
    # correlation 20 / sqrt(5**4) = 0.8; Wilson's 5/10 half-width is 0.263408, so the bounds are
    # -+ 0.263408 * sqrt(2 - 2 * 0.8) = 0.166594.
    before = {i: float(i < 5) for i in range(10)}
    result = compare_paired(before, dict(before))
    assert result.difference == 0.0 and result.p_value == 1.0
    assert (result.ci_low, result.ci_high) == (pytest.approx(-0.166594, abs=1e-5), pytest.approx(0.166594, abs=1e-5))


def test_graded_values_get_the_normal_interval_of_the_differences():
    # Differences 0.3, 0.2, 0.0: mean 1/6, sample sd 0.152753, standard error 0.088192.
    result = compare_paired({"a": 0.2, "b": 0.4, "c": 0.6}, {"a": 0.5, "b": 0.6, "c": 0.6})
    half = Z * 0.152753 / math.sqrt(3)
    assert result.difference == pytest.approx(1 / 6)
    assert (result.ci_low, result.ci_high) == (pytest.approx(1 / 6 - half, abs=1e-5), pytest.approx(1 / 6 + half, abs=1e-5))
    assert result.fixed == ["a", "b"] and result.broke == []  # correct means a value of at least 0.5
    assert result.p_value == pytest.approx(0.5)  # two rose, none fell: the sign test


def test_only_shared_samples_are_paired_in_the_second_evaluations_order():
    result = compare_paired({"x": 1.0, "y": 0.0, "only-before": 1.0}, {"y": 1.0, "x": 0.0, "only-after": 0.0})
    assert (result.n, result.before, result.after) == (2, 0.5, 0.5)
    assert (result.fixed, result.broke) == (["y"], ["x"])


def test_no_shared_sample_says_nothing():
    result = compare_paired({"a": 1.0}, {"b": 1.0})
    assert (result.n, result.ci_low, result.ci_high, result.p_value) == (0, -1.0, 1.0, 1.0)
