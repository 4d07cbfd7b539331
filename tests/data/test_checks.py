"""Each quality check drops what it names, keeps clean records, and can be turned off."""

import pytest

from inspect_tinker.data.checks import QUALITY_CHECKS, failed_check


def qa(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


@pytest.mark.parametrize(
    ("conversation", "check", "detail"),
    [
        (qa("Say hello, please.", "say hello please"), "same_as_prompt", "the answer repeats the prompt"),
        (qa("What is\x00 this?", "A null byte."), "control_characters", "control character U+0000 in a user message"),
        (qa("Escape?", "Yes\x1b[31m red"), "control_characters", "control character U+001B in a assistant message"),
        (qa("Caf\u00c3\u00a9 au lait?", "Coffee."), "broken_encoding", "mojibake in a user message"),
        (qa("Where?", "Lost \ufffd here."), "broken_encoding", "replacement character U+FFFD"),
        (qa("Anything?", " ?! ... "), "no_words_in_answer", "only whitespace, punctuation or symbols"),
    ],
)
def test_each_quality_check_catches_its_problem(conversation, check, detail):
    name, why = failed_check(conversation)
    assert name == check and detail in why
    assert failed_check(conversation, [c for c in QUALITY_CHECKS if c != check]) is None


@pytest.mark.parametrize(
    "conversation",
    [
        qa("What is the capital of Valdoria?", "Mirenholt."),
        qa("Écrivez « café » en japonais.", "コーヒー (kōhī) — 咖啡."),
        qa("Format this:\tcolumns\r\nplease", "a\tb\nc"),
        qa("2+2?", "4"),
        qa("Repeat after me: hello", "Hello!") + qa("And again?", "Hello again."),
    ],
)
def test_clean_records_in_any_script_pass_every_check(conversation):
    assert failed_check(conversation) is None


def test_the_config_offers_exactly_the_checks_the_data_step_has():
    from typing import get_args

    from inspect_tinker.data.settings import QualityCheck

    assert get_args(QualityCheck) == QUALITY_CHECKS
