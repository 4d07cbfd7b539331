"""The scorers inspect-tinker registers with Inspect, usable from any task.

- `qa_grader` (`inspect_tinker/qa_grader`): the expected answer or an alias appears in the
  response as whole words, after SQuAD-style normalisation. Inspect's own `includes` only
  folds case, so "Paris." and "paris" would differ, and "crell" would match "crells".
- `numeric` (`inspect_tinker/numeric`): a number in the response equals the expected one
  within a tolerance. Inspect's numeric `match` rounds to five significant digits and takes
  no tolerance.

Every other scorer a run can name in its config is Inspect's own (see loop/eval_tasks.py).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata

from inspect_ai.scorer import CORRECT, INCORRECT, Score, Scorer, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalize_answer(text: str) -> str:
    """Lower-case, fold unicode, drop punctuation and English articles, squeeze spaces (SQuAD-style)."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_included_in(response: str, targets: list[str]) -> bool:
    """True when a normalised target appears in the normalised response as whole words."""
    haystack = f" {normalize_answer(response)} "
    return any(f" {n} " in haystack for n in map(normalize_answer, targets) if n)


@scorer(metrics=[accuracy(), stderr()])
def qa_grader() -> Scorer:
    """Correct when the expected answer (or an alias: every target of the sample) is included
    in the response as whole words, both normalised (`normalize_answer`)."""

    async def score(state: TaskState, target: Target) -> Score:
        response = state.output.completion
        ok = answer_included_in(response, list(target.target))
        return Score(value=CORRECT if ok else INCORRECT, answer=response)

    return score


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
