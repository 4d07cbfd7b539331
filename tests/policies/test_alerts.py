"""Warnings: a gate score that rises alone, and a regression guard that falls."""

from evalresults import eval_result, task_result

from inspect_tinker.policies import alerts


def test_a_rising_gate_score_with_a_flat_confirmation_score_warns_of_fitting_the_gate():
    before = eval_result(task_result("gate", [True, False, False, False]), task_result("c", [True, False], role="confirm"))
    after = eval_result(task_result("gate", [True, True, True, False]), task_result("c", [True, False], role="confirm"))
    [(kind, message)] = alerts(after, before, before)
    assert kind == "fitting_the_gate"
    assert "may be fitting the gate" in message and "c 0.500 → 0.500" in message


def test_a_confirmation_score_that_rises_with_the_gate_score_raises_no_warning():
    before = eval_result(task_result("gate", [False, False]), task_result("c", [False, False], role="confirm"))
    after = eval_result(task_result("gate", [True, True]), task_result("c", [True, False], role="confirm"))
    assert alerts(after, before, before) == []


def test_a_falling_guard_warns_of_lost_general_ability_naming_the_broken_questions():
    first = eval_result(task_result("gate", [False]), task_result("gk", [True, True, True], role="guard"))
    later = eval_result(task_result("gate", [True]), task_result("gk", [True, False, True], role="guard"))
    [(kind, message)] = alerts(later, first, first)
    assert kind == "regression_guard_fell"
    assert "regression guard gk fell 1.000 → 0.667" in message and "now wrong: s1" in message


def test_a_steady_guard_and_no_confirmation_task_raise_nothing():
    first = eval_result(task_result("gate", [False]), task_result("gk", [True], role="guard"))
    later = eval_result(task_result("gate", [True]), task_result("gk", [True], role="guard"))
    assert alerts(later, first, first) == []
