"""The relevance floor: does a pool record plausibly answer a failed question, or is it a look-alike?

Retrieval ranks; it never says "nothing here answers this". A pool of look-alikes (the same
question templates about other places, other facts about the same place) always has a next
best record, so ranking alone keeps adding records after the relevant ones are gone. The floor
is calibrated on the pool itself, per question:

1. Names. The question's names (capitalised words that do not start a sentence: "Quessa",
   "Kestrel Isles") are what it is about; a record that does not mention them all is about
   something else. A question without names has no such requirement.
2. What is asked. The question's other words are what it asks about the names ("capital",
   "language", "spoken"). A record must cover at least half as many of them as the best
   record of the whole pool does: the pool sets the bar. Half, so that a record stating the
   fact in other words still counts; the whole pool, so that when the record that answers is
   missing, the best look-alike left about the names does not set the bar itself. A record
   about another fact of the same place, sharing only "people" with "Which language is spoken
   by the people of Quessa?", is refused, because some record (about Quessa or any other place)
   shares "language", "spoken" and "people". Words of a paraphrase that the pool uses only
   about other things ("Which town serves as ...": "This recipe serves four") raise the bar
   only as far as those records cover them. Once the records that answer are taken, nothing
   is left above the floor: selection stops. A look-alike sharing one of two asked words
   ("national bird" for a question about the national dish) still passes: the floor errs
   towards adding.

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
        asked = terms - set(names)
        best = max((len(asked & doc) for doc in self._terms), default=0)

        def verdict(document: int) -> Verdict:
            doc = self._terms[document]
            missing = [n for n in names if n not in doc]
            if missing:
                return Verdict(False, f"does not mention {', '.join(missing)}")
            if not self.lexical:
                return Verdict(True, f"mentions {', '.join(names)}" if names else "no names to require")
            if not asked:  # the question asks nothing beyond its names
                return Verdict(True, f"mentions {', '.join(names)}")
            if not best:
                return Verdict(False, "no record in the pool uses any other word of the question")
            covered = sorted(asked & doc)
            words = f"covers {len(covered)} of the question's words ({', '.join(covered) or 'none'})"
            if covered and len(covered) >= best / 2:
                return Verdict(True, f"{words}; the best record in the pool covers {best}")
            return Verdict(False, f"{words}, under half of the {best} the best record in the pool covers")

        return verdict


def _tokens(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en_plus", return_ids=False, show_progress=False)


def _name_terms(text: str) -> set[str]:
    """The tokens of the capitalised words of `text` that do not start a sentence."""
    words = [w for sentence in _SENTENCE.findall(text) for w in _WORD.findall(sentence)[1:] if w[0].isupper()]
    return set(_tokens([" ".join(words)])[0]) if words else set()
