"""Per-sample history across rounds: fixed, broke, and the history table of the run folder."""

from evalresults import eval_result, task_result

from inspect_tinker.evals.history import mark_changes, sample_history


def test_a_round_lists_the_samples_it_fixed_and_the_ones_it_broke():
    before = eval_result(task_result("facts", [False, True, False, True]))
    after = eval_result(task_result("facts", [True, False, False, True]))
    mark_changes(after, before, previous_round=1)
    task = after.task("facts")
    assert (task.compared_with, task.fixed, task.broke) == (1, ["s0"], ["s1"])


def test_a_round_carries_its_paired_comparison_with_the_round_before():
    before = eval_result(task_result("facts", [False] * 10))
    after = eval_result(task_result("facts", [True] * 9 + [False]))
    mark_changes(after, before, previous_round=2)
    paired = after.task("facts").paired
    assert (paired["n"], paired["difference"]) == (10, 0.9)
    assert paired["p_value"] == 2 / 512  # McNemar exact: 9 fixed, none broken
    assert 0.0 < paired["ci_low"] < 0.9 < paired["ci_high"] <= 1.0  # a gain that noise does not explain


def test_the_first_evaluation_has_nothing_to_compare_with():
    first = eval_result(task_result("facts", [True, False]))
    mark_changes(first, None, None)
    assert first.task("facts").compared_with is None and first.task("facts").fixed == []


def test_tasks_are_compared_by_name_and_samples_by_id():
    before = eval_result(task_result("facts", [False, False]), task_result("other", [True]))
    after = eval_result(task_result("facts", [True, True, True]), task_result("new", [False]))
    mark_changes(after, before, previous_round=0)
    assert after.task("facts").fixed == ["s0", "s1"]  # s2 was not asked before
    assert after.task("new").compared_with is None


def test_the_history_table_holds_every_round_of_every_sample():
    rounds = {0: eval_result(task_result("facts", [False, True])), 1: eval_result(task_result("facts", [True, False]))}
    table = sample_history(rounds)
    assert table["facts"]["s0"]["rounds"] == {"0": False, "1": True}
    assert table["facts"]["s1"]["question"] == "q1?"
