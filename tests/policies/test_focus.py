"""Focus (policies/focus.py): the records still above the loss bound are drawn focus_weight times,
and the next round gets the steps that carry their extra copies."""

from inspect_tinker.policies import RoundDecision, account_for_unlearned
from inspect_tinker.policies.focus import FocusCandidate, extra_steps, unlearned, weigh

CONVERSATION = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]


def candidates(n: int) -> list[FocusCandidate]:
    return [FocusCandidate(f"pool.jsonl:{i}", CONVERSATION, f"added for failed facts/{i}") for i in range(1, n + 1)]


def going_on(steps: int = 12) -> RoundDecision:
    return RoundDecision(False, False, 1e-3, steps, 16, "lr_decay/decay", "score 0.500 < bar 0.900")


def test_a_record_above_the_loss_bound_gets_weight_minus_one_extra_copies_and_one_below_none():
    focus = weigh(candidates(3), [0.9, 0.05, 0.01], weight=3, loss_bound=0.05)
    assert [r.copies for r in focus] == [2, 0, 0]  # at the bound counts as learned
    assert [r.where for r in unlearned(focus)] == ["pool.jsonl:1"] and focus[0].loss == 0.9


def test_the_extra_copies_take_whole_steps_of_the_batch_size():
    # 5 unlearned records drawn 3 times: 10 extra copies, in batches of 8: 2 steps (10 / 8 rounded up).
    focus = weigh(candidates(6), [1.0] * 5 + [0.0], weight=3, loss_bound=0.05)
    assert extra_steps(focus, batch_size=8) == 2
    assert extra_steps(weigh(candidates(2), [0.0, 0.0], weight=3, loss_bound=0.05), batch_size=8) == 0


def test_the_next_round_trains_the_policys_steps_plus_those_that_carry_the_copies():
    decision = account_for_unlearned(going_on(12), unlearned=5, extra_steps=2, max_steps_per_round=None)
    assert (decision.next_steps_per_round, decision.focus_steps, decision.unlearned) == (14, 2, 5)
    assert decision.rule == "lr_decay/decay+unlearned/more_steps"
    assert "5 records still above the loss bound" in decision.reason and "steps 12 → 14" in decision.reason


def test_the_added_steps_stop_at_max_steps_per_round_and_never_shorten_the_round():
    assert account_for_unlearned(going_on(12), 5, 2, max_steps_per_round=13).focus_steps == 1
    capped = account_for_unlearned(going_on(12), 5, 2, max_steps_per_round=10)
    assert (capped.next_steps_per_round, capped.focus_steps) == (12, 0)


def test_nothing_unlearned_or_a_stop_leaves_the_decision_as_it_was():
    assert account_for_unlearned(going_on(12), 0, 0, None).next_steps_per_round == 12
    stop = RoundDecision(True, True, 1e-3, 12, 16, "bar_met", "bar met")
    assert account_for_unlearned(stop, 3, 1, None).next_steps_per_round == 12
