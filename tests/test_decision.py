import pytest
from evalresults import eval_result, task_result

from evaltune.policies import check_gate, decide

RULES = dict(lr_decay=0.6, max_rounds=3)


def verdict(n_right: int, n: int = 4):
    return check_gate(eval_result(task_result("t", [True] * n_right + [False] * (n - n_right))),
                      threshold=0.75, gate_on="point")


def test_meeting_the_bar_stops_with_success():
    d = decide(verdict(3), 1, 1e-3, **RULES)
    assert d.stop and d.bar_met and "bar met" in d.reason


def test_below_the_bar_decays_the_learning_rate_and_continues():
    d = decide(verdict(2), 1, 1e-3, **RULES)
    assert not d.stop and not d.bar_met
    assert d.next_learning_rate == pytest.approx(6e-4)
    assert "6.00e-04" in d.reason and "score 0.500 < bar 0.750" in d.reason


def test_below_the_bar_on_the_last_round_stops_without_success():
    d = decide(verdict(2), 3, 1e-3, **RULES)
    assert d.stop and not d.bar_met and "last round" in d.reason
