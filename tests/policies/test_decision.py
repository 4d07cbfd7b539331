import pytest
from evalresults import eval_result, task_result

from inspect_tinker.config import Config
from inspect_tinker.loop.settings import policy_rules
from inspect_tinker.policies import Hyperparameters, PolicyRules, account_for_new_records, adjust, check_gate, decide
from inspect_tinker.tracking import RoundRecord


def config_rules(**keys) -> PolicyRules:
    """The rules of a Config with its defaults and `keys` changed."""
    return policy_rules(Config.model_construct(**keys))


def history(*scores: float) -> list[RoundRecord]:
    """Evaluated rounds 0, 1, ... with these scores (none met the bar)."""
    return [RoundRecord(n, None, None, s, None) for n, s in enumerate(scores)]


NOW = Hyperparameters(learning_rate=1e-3, steps_per_round=10, lora_rank=8)
RULES = dict(rules=config_rules(lr_decay=0.6, max_rounds=3))


def verdict(n_right: int, n: int = 4):
    return check_gate(eval_result(task_result("t", [True] * n_right + [False] * (n - n_right))),
                      threshold=0.75, gate_on="point")


def test_meeting_the_bar_stops_with_success():
    d = decide(verdict(3), 1, NOW, history(0.0), **RULES)
    assert d.stop and d.bar_met and d.rule == "bar_met" and "bar met" in d.reason


def test_below_the_bar_decays_the_learning_rate_and_continues():
    d = decide(verdict(2), 1, NOW, history(0.0), **RULES)
    assert not d.stop and not d.bar_met and d.rule == "lr_decay/decay"
    assert d.next_learning_rate == pytest.approx(6e-4)
    assert (d.next_steps_per_round, d.next_lora_rank) == (10, 8)
    assert "6.00e-04" in d.reason and "score 0.500 < bar 0.750" in d.reason


def test_below_the_bar_on_the_last_round_stops_without_success():
    d = decide(verdict(2), 3, NOW, history(0.0, 0.5), **RULES)
    assert d.stop and not d.bar_met and d.rule == "last_round" and "last round" in d.reason


def rules(policy, **kw):
    return config_rules(policy=policy, lr_decay=0.5, min_delta=0.05, **kw)


@pytest.mark.parametrize(
    "score, earlier, rule, lr",
    [
        (0.50, [0.0, 0.30], "plateau/keep", 1e-3),  # +0.20 over the best: keep going
        (0.32, [0.0, 0.30], "plateau/decay", 5e-4),  # +0.02 < min_delta: decay
        (0.40, [0.0, 0.60], "plateau/decay", 5e-4),  # worse than the best earlier round
        (0.10, [], "plateau/keep", 1e-3),  # nothing to compare with
    ],
)
def test_plateau_decays_only_when_the_score_did_not_beat_the_best_by_min_delta(score, earlier, rule, lr):
    step = adjust(NOW, score, earlier, rules("plateau"))
    assert step.rule == rule
    assert step.next.learning_rate == pytest.approx(lr)
    assert "min_delta 0.05" in step.reason or not earlier


def test_more_steps_raises_steps_while_the_score_rises_and_decays_once_it_stops():
    rising = adjust(NOW, 0.5, [0.0, 0.3], rules("more_steps"))
    assert rising.rule == "more_steps/raise" and rising.next.steps_per_round == 15
    assert rising.next.learning_rate == NOW.learning_rate and "10 → 15" in rising.reason
    capped = adjust(NOW, 0.5, [0.3], rules("more_steps", max_steps_per_round=12))
    assert capped.next.steps_per_round == 12
    at_cap = adjust(Hyperparameters(1e-3, 12, 8), 0.5, [0.3], rules("more_steps", max_steps_per_round=12))
    assert at_cap.rule == "more_steps/at_cap" and at_cap.next.steps_per_round == 12
    # "Rising" is measured against the previous evaluation, not the best one.
    flat = adjust(NOW, 0.5, [0.6, 0.49], rules("more_steps"))
    assert flat.rule == "more_steps/decay" and flat.next.learning_rate == pytest.approx(5e-4)


def test_grow_rank_grows_a_saturated_adapter_up_to_its_cap_then_decays():
    improving = adjust(NOW, 0.5, [0.0, 0.3], rules("grow_rank"))
    assert improving.rule == "grow_rank/keep" and improving.next == NOW
    stalled = adjust(NOW, 0.31, [0.0, 0.3], rules("grow_rank", rank_growth=2, max_lora_rank=12))
    assert stalled.rule == "grow_rank/grow" and stalled.next.lora_rank == 12 and "8 → 12" in stalled.reason
    at_cap = adjust(Hyperparameters(1e-3, 10, 12), 0.31, [0.3], rules("grow_rank", max_lora_rank=12))
    assert at_cap.rule == "grow_rank/decay" and at_cap.next.lora_rank == 12
    assert at_cap.next.learning_rate == pytest.approx(5e-4)


def test_each_decision_line_names_its_rule_and_the_numbers_behind_it():
    d = decide(verdict(1), 1, NOW, history(0.3), rules=rules("plateau", max_rounds=3))
    assert d.reason == (
        "score 0.250 < bar 0.750; plateau/decay: -0.050 over the best earlier score (< min_delta 0.05): "
        "learning rate 1.00e-03 → 5.00e-04 (×0.5)"
    )


def test_a_round_that_brings_new_records_is_not_trained_at_a_decayed_rate():
    decayed = decide(verdict(2), 1, NOW, history(0.0), **RULES)
    kept = account_for_new_records(decayed, NOW, 5)
    assert kept.next_learning_rate == NOW.learning_rate and kept.new_records == 5
    assert kept.rule == "lr_decay/decay+new_records/keep_rate" and "5 new records for the next round" in kept.reason
    # No new records: the policy's choice stands; a stop stays a stop.
    assert account_for_new_records(decayed, NOW, 0) == decayed
    stopped = decide(verdict(3), 1, NOW, history(0.0), **RULES)
    assert account_for_new_records(stopped, NOW, 5).next_learning_rate == stopped.next_learning_rate
    # A policy that kept or raised the rate is left as it chose.
    plateau_keep = decide(verdict(2), 1, NOW, history(0.0), rules=rules("plateau", max_rounds=3))
    assert account_for_new_records(plateau_keep, NOW, 5).rule == plateau_keep.rule


def test_the_baseline_is_decided_like_a_round_it_stops_when_the_base_model_meets_the_bar():
    met = decide(verdict(3), 0, NOW, [], **RULES)
    assert met.stop and met.bar_met and met.rule == "bar_met" and "meets the bar untrained" in met.reason


def test_a_baseline_below_the_bar_starts_round_1_with_the_configured_hyperparameters():
    below = decide(verdict(1), 0, NOW, [], **RULES)
    assert not below.stop and not below.bar_met and below.rule == "baseline/train"
    assert (below.next_learning_rate, below.next_steps_per_round, below.next_lora_rank) == (1e-3, 10, 8)
    assert below.reason == "score 0.250 < bar 0.750: training round 1" and below.rollback_to is None


def test_rollback_returns_to_the_best_trained_round_not_to_a_better_baseline():
    rollback = config_rules(on_regression="rollback", max_rounds=5)
    # Round 3 (0.25) fell below round 2 (0.5); the baseline's 0.75 is no checkpoint to load.
    d = decide(verdict(1), 3, NOW, history(0.75, 0.25, 0.5), rules=rollback)
    assert not d.stop and d.rollback_to == 2
    assert decide(verdict(2), 3, NOW, history(0.0, 0.25, 0.5), rules=rollback).rollback_to is None  # a tie
    assert decide(verdict(1), 3, NOW, history(0.0, 0.25, 0.5), **RULES).rollback_to is None  # on_regression: continue
    assert decide(verdict(1), 5, NOW, history(0.0, 0.25, 0.5, 0.5, 0.5), rules=rollback).rollback_to is None  # last round
