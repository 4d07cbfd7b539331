import pytest

from evaltune.policies import decide

RULES = dict(threshold=0.75, lr_decay=0.6, max_rounds=3)


def test_meeting_the_bar_stops_with_success():
    d = decide(0.75, 1, 1e-3, **RULES)
    assert d.stop and d.bar_met and "bar met" in d.reason


def test_below_the_bar_decays_the_learning_rate_and_continues():
    d = decide(0.5, 1, 1e-3, **RULES)
    assert not d.stop and not d.bar_met
    assert d.next_learning_rate == pytest.approx(6e-4)
    assert "6.00e-04" in d.reason


def test_below_the_bar_on_the_last_round_stops_without_success():
    d = decide(0.7, 3, 1e-3, **RULES)
    assert d.stop and not d.bar_met and "last round" in d.reason
