import pytest

from evaltune.schedule import schedule_multiplier


def curve(schedule, warmup=0, total=10):
    return [schedule_multiplier(s, schedule=schedule, warmup_steps=warmup, total_steps=total) for s in range(total)]


def test_warmup_rises_linearly_and_the_first_step_already_trains():
    assert curve("constant", warmup=4)[:6] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_constant_stays_at_the_full_rate():
    assert curve("constant") == [1.0] * 10


def test_linear_and_cosine_fall_from_the_full_rate_towards_zero_at_the_end_of_the_run():
    linear, cosine = curve("linear", warmup=2), curve("cosine", warmup=2)
    assert linear[2] == cosine[2] == 1.0
    assert linear[2:] == pytest.approx([1 - k / 8 for k in range(8)])
    assert cosine[6] == pytest.approx(0.5)  # half way through the decay
    assert all(a > b > 0 for a, b in zip(cosine[2:], cosine[3:]))


def test_steps_past_the_planned_total_keep_the_final_rate():
    assert schedule_multiplier(50, schedule="linear", warmup_steps=0, total_steps=10) == 0.0
