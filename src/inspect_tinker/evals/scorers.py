"""Scorers of the built-in tasks, built from the config's `scorer` entry.

Inspect's own scorers are used wherever one fits (`exact`, `match`, `f1`, `pattern`,
`choice`, `model_graded_fact`). Two are ours: `answer_included` (Inspect's `includes` only
folds case; see qa.py) and `numeric` (Inspect's numeric `match` compares numbers rounded to
five significant digits and takes no tolerance).
"""

from __future__ import annotations

import math
import re

from inspect_ai.model import GenerateConfig, Model, ModelRole, get_model
from inspect_ai.scorer import match as match_scorer
from inspect_ai.scorer import (
    CORRECT,
    INCORRECT,
    Score,
    Scorer,
    Target,
    accuracy,
    choice,
    exact,
    f1,
    model_graded_fact,
    pattern,
    scorer,
    stderr,
)
from inspect_ai.solver import TaskState

from inspect_tinker.config import (
    AnswerIncludedScorer,
    Config,
    ChoiceScorer,
    ExactScorer,
    F1Scorer,
    MatchScorer,
    ModelGradedScorer,
    NumericScorer,
    PatternScorer,
    ScorerConfig,
)
from inspect_tinker.evals.qa import answer_included

# Signed integers and decimals, with thousands separators; written here because Inspect's
# number extraction is private and rounds before comparing.
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float | None:
    """The text as a number (`1,234.5` -> 1234.5), or None when it is not exactly one number."""
    text = text.strip().rstrip(".")
    m = _NUMBER.fullmatch(text)
    return float(m.group(0).replace(",", "")) if m else None


def numbers_in(text: str) -> list[float]:
    """Every number written in digits in `text`, in order."""
    return [float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(text)]


def numeric_match(response: str, expected: float, *, tolerance: float, relative_tolerance: float, location: str) -> float | None:
    """The number of `response` (first, last or any) that equals `expected` within the tolerances, else None."""
    found = numbers_in(response)
    candidates = {"first": found[:1], "last": found[-1:], "any": found}[location]
    for value in candidates:
        if math.isclose(value, expected, rel_tol=relative_tolerance, abs_tol=tolerance):
            return value
    return None


@scorer(metrics=[accuracy(), stderr()])
def numeric(tolerance: float = 0.0, relative_tolerance: float = 0.0, location: str = "last") -> Scorer:
    """Correct when a number in the response equals the expected number within the tolerances."""

    async def score(state: TaskState, target: Target) -> Score:
        response = state.output.completion
        for text in target.target:
            expected = parse_number(text)
            if expected is not None and numeric_match(
                response, expected, tolerance=tolerance, relative_tolerance=relative_tolerance, location=location
            ) is not None:
                return Score(value=CORRECT, answer=response)
        return Score(value=INCORRECT, answer=response)

    return score


def judge_settings(config: ModelGradedScorer) -> GenerateConfig:
    """How a model-graded scorer's judge generates: greedy, at most `judge_max_tokens`."""
    return GenerateConfig(max_tokens=config.judge_max_tokens, temperature=0.0)


def base_model_judge_role(config: ModelGradedScorer) -> str:
    """The Inspect model role a scorer without a `judge` grades with: the base model, which
    evaluation binds per run (evals/runner.py); one role per judge setting."""
    return f"base_model_judge_{config.judge_max_tokens}"


def base_model_judges(config: Config) -> dict[str, GenerateConfig]:
    """The base-model judge roles the configured tasks grade with, and their settings."""
    scorers = [t.scorer for t in config.eval_tasks if isinstance(t.scorer, ModelGradedScorer) and t.scorer.judge is None]
    return {base_model_judge_role(s): judge_settings(s) for s in scorers}


def build_scorer(config: ScorerConfig) -> Scorer:
    """The Inspect scorer a `scorer` config entry describes."""
    match config:
        case AnswerIncludedScorer():
            return answer_included()
        case ExactScorer():
            return exact()
        case MatchScorer(location=location, ignore_case=ignore_case):
            return match_scorer(location=location, ignore_case=ignore_case)
        case F1Scorer():
            return f1()
        case NumericScorer(tolerance=tol, relative_tolerance=rel, location=location):
            return numeric(tolerance=tol, relative_tolerance=rel, location=location)
        case PatternScorer(pattern=regex, ignore_case=ignore_case):
            return pattern(regex, ignore_case=ignore_case)
        case ChoiceScorer():
            return choice()
        case ModelGradedScorer():
            return model_graded_fact(
                template=config.template,
                instructions=config.instructions,
                partial_credit=config.partial_credit,
                model=get_model(config.judge, config=judge_settings(config), memoize=False) if config.judge else None,
                model_role=ModelRole(base_model_judge_role(config), required=True),
            )
    raise AssertionError(f"no scorer for {config!r}")  # the config's union and this match list the same names


def scorer_label(config: ScorerConfig, base_model: str) -> str:
    """How the scorer is named in output: its name and the options that change its meaning."""
    match config:
        case MatchScorer(location=location):
            return f"match ({location})"
        case NumericScorer(tolerance=tol, relative_tolerance=rel, location=location):
            within = f"±{tol:g}" if tol else ""
            within += (" or " if within and rel else "") + (f"±{rel:.0%}" if rel else "")
            return f"numeric ({location} number{', ' + within if within else ', exact'})"
        case PatternScorer(pattern=regex):
            return f"pattern /{regex}/"
        case ModelGradedScorer(judge=None):
            return f"model_graded (judge: local base model {base_model}, without the adapter)"
        case ModelGradedScorer(judge=judge):
            return f"model_graded (judge: {judge})"
    return config.name
