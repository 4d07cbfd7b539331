"""The gate: weighted aggregate, per-task bars, point or lower bound, and what held a run back."""

import pytest
from evalresults import eval_result, task_result

from inspect_tinker.policies import check_gate
from inspect_tinker.policies.gate import AGGREGATE


def right(k: int, n: int) -> list[bool]:
    return [True] * k + [False] * (n - k)


def test_the_aggregate_is_the_weighted_mean_of_the_gating_tasks_only():
    result = eval_result(
        task_result("a", right(8, 10), weight=3),
        task_result("b", right(4, 10)),
        task_result("c", right(0, 10), role="confirm"),
        task_result("g", right(0, 10), role="guard"),
    )
    assert result.score == pytest.approx((3 * 0.8 + 0.4) / 4)
    assert result.n_samples == 20


def test_the_bar_is_met_when_the_aggregate_and_every_own_bar_are_met():
    result = eval_result(task_result("a", right(9, 10), weight=2), task_result("b", right(6, 10), threshold=0.5))
    v = check_gate(result, threshold=0.75, gate_on="point")
    assert v.passed and v.held_back_by == []


def test_a_task_below_its_own_bar_holds_the_run_back_and_is_named():
    result = eval_result(task_result("a", right(10, 10), weight=3), task_result("b", right(3, 10), threshold=0.5))
    v = check_gate(result, threshold=0.75, gate_on="point")
    assert result.score >= 0.75  # the aggregate alone would pass
    assert not v.passed and v.held_back_by == ["b"]
    assert "b 0.300 < its bar 0.500" in v.reason and "held back by b" in v.reason


def test_a_low_aggregate_holds_the_run_back_even_when_own_bars_are_met():
    result = eval_result(task_result("a", right(5, 10)), task_result("b", right(6, 10), threshold=0.5))
    v = check_gate(result, threshold=0.75, gate_on="point")
    assert not v.passed and v.held_back_by == [AGGREGATE]


def test_confirmation_tasks_never_gate_whatever_they_score():
    result = eval_result(task_result("a", right(10, 10)), task_result("c", right(0, 10), role="confirm"))
    assert check_gate(result, threshold=0.75, gate_on="point").passed


def test_a_bar_met_only_by_the_point_estimate_is_said_so():
    result = eval_result(task_result("a", right(10, 12)))  # 0.833, 95% Wilson interval 0.55-0.95
    v = check_gate(result, threshold=0.75, gate_on="point")
    assert v.passed and v.point_only
    assert "met only by the point estimate" in v.note and "12 samples" in v.note


def test_a_bar_met_by_the_whole_interval_needs_no_warning():
    result = eval_result(task_result("a", right(200, 200)))  # interval 0.98-1.0
    v = check_gate(result, threshold=0.75, gate_on="point")
    assert v.passed and not v.point_only and v.note == ""


def test_gating_on_the_lower_bound_refuses_a_bar_met_by_luck():
    small = eval_result(task_result("a", right(10, 12)))
    v = check_gate(small, threshold=0.75, gate_on="lower_bound")
    assert not v.passed and v.compared == pytest.approx(small.ci_low) and "lower bound" in v.reason
    large = eval_result(task_result("a", right(190, 200)))
    assert check_gate(large, threshold=0.75, gate_on="lower_bound").passed


def test_own_bars_use_the_lower_bound_too_when_gating_on_it():
    result = eval_result(task_result("a", right(200, 200), weight=9), task_result("b", right(7, 10), threshold=0.6))
    v = check_gate(result, threshold=0.75, gate_on="lower_bound")
    assert not v.passed and v.held_back_by == ["b"]
