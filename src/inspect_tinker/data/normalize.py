"""How texts are compared: one normalisation for duplicates, near duplicates and contamination.

Two texts that differ only in case, Unicode form (NFKC: full-width letters, ligatures),
punctuation or spacing compare equal: those differences do not change what a model learns
from a record, nor make a copied evaluation question any less copied.
"""

from __future__ import annotations

import re
import unicodedata

from inspect_tinker.data.records import Conversation

_WORD = re.compile(r"\w+")


def normalized_words(text: str) -> list[str]:
    """The words of `text` (runs of letters, digits and `_`), NFKC-folded and case-folded."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalized_text(text: str) -> str:
    """`text` as its normalised words joined by single spaces."""
    return " ".join(normalized_words(text))


# (role, normalised words) per message: computed once per record, shared by the detectors.
NormalizedConversation = list[tuple[str, list[str]]]


def normalize_conversation(conversation: Conversation) -> NormalizedConversation:
    """Each message's role and normalised words."""
    return [(m["role"], normalized_words(m["content"])) for m in conversation]
