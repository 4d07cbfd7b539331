"""The relevance floor: does a pool record plausibly answer a failed question, or is it a look-alike?

Retrieval ranks; it never says "nothing here answers this". A pool of look-alikes (the same
question templates about other places, other facts about the same place) always has a next
best record, so ranking alone keeps adding records after the relevant ones are gone. The floor
is calibrated on the pool itself, per question:

1. Names. The question's names (capitalised words that do not start a sentence: "Quessa",
   "Kestrel Isles") are what it is about; a record that does not mention them all is about
   something else. A question without names has no such requirement.
2. What is asked. Among the pool records that mention the names (all records, for a question
   without names), the question's other words that occur there are what the pool can say about
   what is asked ("capital", "language", "spoken"); words of the question that the pool never
   uses near the names ("town", "serves") say nothing. A record must cover at least half as
   many of those words as the best record about the names does: the best the pool holds sets
   the bar (half of it, so that a record stating the same fact in other words still counts), so
   a record about another fact of the same place (sharing only "people" with a question about
   the language its people speak, where the best record shares "language", "spoken" and
   "people") is refused, and once the records that answer are taken, nothing is left above the
   floor: selection stops. A look-alike sharing one of two asked words ("national bird" for a
   question about the national dish) still passes: the floor errs towards adding.

Words are bm25s's tokens without its English stop words, as lexical retrieval
(policies/retrieval.py) uses them. The floor is lexical: with `retrieval: embedding`, which is
for paraphrases that share no word with the question, only the names are required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import bm25s

_SENTENCE = re.compile(r"[^.?!]+")
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class Verdict:
    """Whether a record plausibly answers a question, and why (or why not), in words."""

    relevant: bool
    reason: str


class RelevanceFloor:
    """The floor for one collection of documents (the candidate pool's retrieval texts)."""

    def __init__(self, documents: list[str], *, lexical: bool = True):
        self.lexical = lexical
        self._terms = [set(t) for t in _tokens(documents)] if documents else []

    def floor(self, question: str):
        """A function of a document number (0-based, in the order given) giving its `Verdict` for
        `question`: whether that document plausibly answers it. The pool's statistics for the
        question are computed once."""
        [terms] = _tokens([question])
        terms = set(terms)
        names = sorted(terms & _name_terms(question))
        named = [i for i, doc in enumerate(self._terms) if doc.issuperset(names)]
        asked_in_pool = set().union(*(self._terms[i] for i in named)) & (terms - set(names)) if named else set()
        best = max((len(asked_in_pool & self._terms[i]) for i in named), default=0)
        about = f"about {' '.join(names)}" if names else "in the pool"

        def verdict(document: int) -> Verdict:
            doc = self._terms[document]
            missing = [n for n in names if n not in doc]
            if missing:
                return Verdict(False, f"does not mention {', '.join(missing)}")
            if not self.lexical:
                return Verdict(True, f"mentions {', '.join(names)}" if names else "no names to require")
            if terms <= set(names):  # the question asks nothing beyond its names
                return Verdict(True, f"mentions {', '.join(names)}")
            if not asked_in_pool:
                return Verdict(False, f"no record {about} uses any other word of the question")
            covered = sorted(asked_in_pool & doc)
            needed = best / 2
            words = f"covers {len(covered)} of {len(asked_in_pool)} asked words ({', '.join(covered) or 'none'})"
            if covered and len(covered) >= needed:
                return Verdict(True, f"{words}; the best record {about} covers {best}")
            return Verdict(False, f"{words}, under half of the {best} the best record {about} covers")

        return verdict


def _tokens(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en_plus", return_ids=False, show_progress=False)


def _name_terms(text: str) -> set[str]:
    """The tokens of the capitalised words of `text` that do not start a sentence."""
    words = [w for sentence in _SENTENCE.findall(text) for w in _WORD.findall(sentence)[1:] if w[0].isupper()]
    return set(_tokens([" ".join(words)])[0]) if words else set()
