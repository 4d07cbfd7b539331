"""Quality checks on the text of a conversation: each one a name, a test and a reason.

Token-length checks need the tokenizer and live with rendering (prepare.py); these need
only the text, so they run before the model loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ftfy.badness import is_bad as looks_like_mojibake

from inspect_tinker.data.normalize import normalized_text
from inspect_tinker.data.records import Conversation

# C0 and C1 control characters other than tab, newline and carriage return: they come from
# binary data or broken exports and tokenize into junk.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def failed_check(conversation: Conversation, enabled: Iterable[str] | None = None) -> tuple[str, str] | None:
    """The first enabled check (all by default) the conversation fails, as (check name, detail); None when it passes all."""
    for check in QUALITY_CHECKS if enabled is None else enabled:
        detail = _CHECKS[check](conversation)
        if detail:
            return check, detail
    return None


def _same_as_prompt(conversation: Conversation) -> str | None:
    # Prompts without words ("?!") repeat nothing; no_words_in_answer covers such answers.
    previous_user = ""
    for message in conversation:
        if message["role"] == "user":
            previous_user = normalized_text(message["content"])
        elif message["role"] == "assistant" and previous_user and normalized_text(message["content"]) == previous_user:
            return "the answer repeats the prompt"
    return None


def _control_characters(conversation: Conversation) -> str | None:
    for message in conversation:
        if found := _CONTROL.search(message["content"]):
            return f"control character U+{ord(found.group()):04X} in a {message['role']} message"
    return None


def _broken_encoding(conversation: Conversation) -> str | None:
    # U+FFFD is what a decoder leaves where bytes were lost; mojibake ("cafÃ©") is UTF-8
    # decoded as Latin-1 or cp1252, which ftfy recognises with few false alarms.
    for message in conversation:
        if message["content"].isascii():
            continue  # both need non-ASCII characters
        if "\ufffd" in message["content"]:
            return f"replacement character U+FFFD in a {message['role']} message (text lost in decoding)"
        if looks_like_mojibake(message["content"]):
            return f"mojibake in a {message['role']} message (text decoded with the wrong encoding)"
    return None


def _no_words_in_answer(conversation: Conversation) -> str | None:
    for message in conversation:
        if message["role"] == "assistant" and not any(c.isalnum() for c in message["content"]):
            return "an answer has only whitespace, punctuation or symbols"
    return None


_CHECKS = {
    "same_as_prompt": _same_as_prompt,
    "control_characters": _control_characters,
    "broken_encoding": _broken_encoding,
    "no_words_in_answer": _no_words_in_answer,
}
# The config's `data.checks` lists the same names (its schema; tests/data/test_checks.py keeps the two equal):
# the data step never imports the config.
QUALITY_CHECKS: tuple[str, ...] = tuple(_CHECKS)
