"""What an evaluation's verdict and decision do to the run's state (tracking/run_state.next_state)."""

from __future__ import annotations

from dataclasses import replace

from evalresults import eval_result, task_result

from inspect_tinker.policies import RoundDecision, check_gate
from inspect_tinker.tracking import RoundRecord, RunState, next_state


def verdict(n_right: int, n: int = 4):
    return check_gate(eval_result(task_result("t", [True] * n_right + [False] * (n - n_right))),
                      threshold=0.75, gate_on="point")


def go_on(lr=5e-4, steps=12, rank=16, rollback_to=None) -> RoundDecision:
    return RoundDecision(False, False, lr, steps, rank, "lr_decay/decay", "below the bar", rollback_to=rollback_to)


FRESH = RunState(learning_rate=1e-3, steps_per_round=10, lora_rank=8)
STOP = RoundDecision(True, True, 1e-3, 10, 8, "bar_met", "bar met")


def trained(round_no: int, steps_done: int, history=()) -> RunState:
    """The state of a run whose round `round_no` has trained and awaits its evaluation."""
    return replace(FRESH, round=round_no, phase="evaluating", global_step=steps_done, last_loss=0.3,
                   round_start_step=steps_done - 10, checkpoint=f"/run/rounds/{round_no}", baseline_done=True,
                   history=list(history))


def test_a_baseline_below_the_bar_joins_the_history_as_round_0_and_round_1_starts_as_configured():
    after = next_state(FRESH, verdict(1), go_on())
    assert after.history == [RoundRecord(0, None, None, 0.25, None, None, 0, False)]
    assert after.baseline_done and after.phase == "training" and after.round == 1
    assert (after.learning_rate, after.steps_per_round, after.lora_rank) == (1e-3, 10, 8)  # not the decision's
    assert FRESH.history == [] and not FRESH.baseline_done  # the state given is left as it was


def test_a_baseline_that_meets_the_bar_finishes_the_run():
    after = next_state(FRESH, verdict(3), STOP)
    assert after.phase == "finished" and after.history[0].bar_met and after.history[0].round == 0


def test_a_trained_round_joins_the_history_and_the_next_round_starts_with_the_decided_hyperparameters():
    state = trained(1, 10, [RoundRecord(0, None, None, 0.0, None)])
    after = next_state(state, verdict(2), go_on(lr=6e-4, steps=15, rank=16), adapter="/run/rounds/1/adapter")
    assert after.history[-1] == RoundRecord(1, 1e-3, 0.3, 0.5, "/run/rounds/1/adapter", "/run/rounds/1", 10, False)
    assert (after.round, after.phase, after.learning_rate, after.steps_per_round, after.lora_rank) == (
        2, "training", 6e-4, 15, 16)
    assert after.round_start_step == 10 and after.step_in_round == 0
    assert after.checkpoint == after.round_start_checkpoint == "/run/rounds/1"  # round 2 continues round 1


def test_a_rollback_starts_the_next_round_from_the_checkpoint_of_the_round_it_names():
    best = RoundRecord(1, 1e-3, 0.3, 0.5, "/run/rounds/1/adapter", "/run/rounds/1", 10, False)
    after = next_state(trained(2, 20, [RoundRecord(0, None, None, 0.0, None), best]), verdict(1), go_on(rollback_to=1),
                       adapter="/run/rounds/2/adapter")
    assert after.round == 3 and after.checkpoint == after.round_start_checkpoint == "/run/rounds/1"
    assert after.round_start_step == 20  # the step count goes on: it numbers the steps, it is not the weights'


def test_the_last_decision_finishes_the_run_and_keeps_the_additions_selection_made():
    addition = {"where": "pool.jsonl:3"}
    going = next_state(trained(1, 10), verdict(2), go_on(), adapter="a", data_additions=[addition])
    assert going.data_additions == [addition]
    done = next_state(replace(going, phase="evaluating"), verdict(3), STOP, adapter="b")
    assert done.phase == "finished" and done.data_additions == [addition] and done.history[-1].bar_met
