"""Each scorer of the built-in tasks, built from its config entry, on given responses."""

import asyncio

import pytest
from inspect_ai.model import ChatMessageUser, ModelOutput
from inspect_ai.scorer import Target
from inspect_ai.solver import TaskState, multiple_choice
from pydantic import TypeAdapter

from inspect_tinker.config import ScorerConfig
from inspect_tinker.loop.eval_tasks import build_scorer, scorer_label
from inspect_tinker.evals.scorers import numbers_in

SCORER = TypeAdapter(ScorerConfig)


def score(config: dict | str, response: str, target: str | list[str]) -> object:
    """The value the configured scorer gives `response` for `target`."""
    scorer = build_scorer(SCORER.validate_python({"name": config} if isinstance(config, str) else config))
    state = TaskState(model="m", sample_id=1, epoch=1, input="q?", messages=[],
                      output=ModelOutput.from_content(model="m", content=response))
    return asyncio.run(scorer(state, Target(target))).value


@pytest.mark.parametrize(
    ("config", "response", "target", "expected"),
    [
        ("answer_included", "The capital is Mirenholt.", "mirenholt", "C"),
        ("answer_included", "They pay in crells", "crell", "I"),  # whole words only
        ("exact", "The Silver Otter!", "silver otter", "C"),  # normalised: case, punctuation, articles
        ("exact", "It is the silver otter", "silver otter", "I"),
        ({"name": "match", "location": "begin"}, "Paris, of course.", "Paris", "C"),
        ({"name": "match", "location": "begin"}, "Of course Paris", "Paris", "I"),
        ({"name": "match", "location": "end"}, "The answer is Paris", "Paris", "C"),
        ({"name": "match", "location": "end"}, "Paris is the answer", "Paris", "I"),
        ({"name": "numeric"}, "5 + 7 makes 12.", "12", "C"),
        ({"name": "numeric"}, "It is 12.5", "12", "I"),
        ({"name": "numeric", "tolerance": 0.5}, "It is 12.5", "12", "C"),
        ({"name": "numeric", "relative_tolerance": 0.01}, "about 1,005 metres", "1000", "C"),
        ({"name": "numeric", "relative_tolerance": 0.01}, "about 1,020 metres", "1000", "I"),
        ({"name": "numeric", "location": "first"}, "12, not 13", "12", "C"),
        ({"name": "numeric", "location": "last"}, "12, not 13", "12", "I"),
        ({"name": "numeric", "location": "any"}, "12, not 13", "13", "C"),
        ({"name": "pattern", "pattern": r"ANSWER:\s*(\w+)"}, "I think... ANSWER: paris", "Paris", "C"),
        ({"name": "pattern", "pattern": r"ANSWER:\s*(\w+)"}, "Paris", "Paris", "I"),  # format not followed
    ],
)
def test_each_scorer_judges_responses_by_its_rule(config, response, target, expected):
    assert score(config, response, target) == expected


def test_token_f1_gives_partial_credit():
    assert score("f1", "Lake Oomba in the north", "Lake Oomba") == pytest.approx(0.67, abs=0.01)
    assert score("f1", "Lake Oomba", "Lake Oomba") == 1.0
    assert score("f1", "no idea", "Lake Oomba") == 0.0


@pytest.mark.parametrize(("response", "expected"), [("ANSWER: B", "C"), ("ANSWER: A", "I"), ("B, I think", "I")])
def test_the_choice_scorer_checks_the_letter_the_model_picked(response, expected):
    state = TaskState(model="m", sample_id=1, epoch=1, input="Capital of France?",
                      messages=[ChatMessageUser(content="Capital of France?")], choices=["Berlin", "Paris", "Madrid"])

    async def generate(state, **kwargs):  # the model's answer, given
        state.output = ModelOutput.from_content(model="m", content=response)
        return state

    async def solve_and_score():
        solved = await multiple_choice()(state, generate)
        return await build_scorer(SCORER.validate_python({"name": "choice"}))(solved, Target("B"))

    assert asyncio.run(solve_and_score()).value == expected


def test_numbers_are_read_with_signs_decimals_and_thousands_separators():
    assert numbers_in("-3 and 1,234.5 or 2e3, not v2") == [-3.0, 1234.5, 2000.0, 2.0]


def test_labels_say_what_scored_and_who_judged():
    judge = SCORER.validate_python({"name": "model_graded"})
    assert scorer_label(judge, "SmolLM2") == "model_graded (judge: local base model SmolLM2, without the adapter)"
    other = SCORER.validate_python({"name": "model_graded", "judge": "openai/gpt-4o-mini"})
    assert scorer_label(other, "SmolLM2") == "model_graded (judge: openai/gpt-4o-mini)"
    assert scorer_label(SCORER.validate_python({"name": "numeric", "tolerance": 0.5}), "x") == "numeric (last number, ±0.5)"
