import math

import pytest

from inspect_tinker.policies.schedule import schedule_multiplier


def curve(schedule, rounds, warmup=0):
    """The factor of every step of a run whose rounds take `rounds` steps each."""
    factors, start = [], 0
    for steps in rounds:
        factors += [
            schedule_multiplier(start + k, step_in_round=k, round_steps=steps, schedule=schedule, warmup_steps=warmup)
            for k in range(steps)
        ]
        start += steps
    return factors


def test_warmup_rises_linearly_once_and_the_first_step_already_trains():
    assert curve("constant", [3, 3], warmup=4) == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_constant_stays_at_the_full_rate():
    assert curve("constant", [4, 6]) == [1.0] * 10


def test_linear_and_cosine_fall_over_each_rounds_own_steps_from_the_full_rate():
    linear, cosine = curve("linear", [4, 5]), curve("cosine", [4, 5])
    assert linear == pytest.approx([1, 0.75, 0.5, 0.25, 1, 0.8, 0.6, 0.4, 0.2])
    assert cosine == pytest.approx([0.5 * (1 + math.cos(math.pi * k / n)) for n in (4, 5) for k in range(n)])
    assert cosine[2] == pytest.approx(0.5)  # half way through round 1's decay


def test_after_warmup_the_decay_spans_the_rest_of_the_round():
    assert curve("linear", [6, 2], warmup=2) == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 1.0, 0.5])


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_every_step_trains_however_long_the_rounds_grow(schedule):
    # policy more_steps: 5 -> 8 -> 12 steps; warmup longer than round 1 spills into round 2.
    assert min(curve(schedule, [5, 8, 12], warmup=7)) > 0


def test_a_round_whose_length_changes_midway_decays_over_its_new_length():
    # A forced steps_per_round on resume at step 2 of a 4-step round: 10 steps from there on.
    before = [schedule_multiplier(k, step_in_round=k, round_steps=4, schedule="linear", warmup_steps=0) for k in range(2)]
    after = [schedule_multiplier(k, step_in_round=k, round_steps=10, schedule="linear", warmup_steps=0) for k in range(2, 10)]
    assert before == pytest.approx([1, 0.75]) and after == pytest.approx([0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
