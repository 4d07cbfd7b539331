"""The relevance floor: does a pool record plausibly answer a failed question, or is it a look-alike?

Retrieval ranks; it never says "nothing here answers this". A pool of look-alikes (the same
question templates about other places, other facts about the same place) always has a next
best record, so ranking alone keeps adding records after the relevant ones are gone. The floor
is calibrated on the pool itself, per question, and weighs three things:

1. Whom the record is about. The question's names (capitalised words that do not start a
   sentence: "Quessa", "Kestrel Bay") are what it is about. A record that mentions them all is
   about them. One that misses some and whose prompt (its user turns: what the record asks
   about, as its answer holds the value, "Marigold") names something else instead is about
   something else ("What ferry runs the Pell Harbour night service?"): refused. One that
   names nothing else may state the fact without repeating the names ("Which ferry is used
   for the night service? / The night service uses the ferry Marigold."): it is let through
   only on the second opinion below, since the names, the strongest evidence, are missing.
2. What is asked. The question's other words are what it asks about the names ("capital",
   "language", "spoken"). A record must cover at least half as many of them as the best
   record of the whole pool does: the pool sets the bar. Half, so that a record stating the
   fact in other words still counts; the whole pool, so that when the record that answers is
   missing, the best look-alike left about the names does not set the bar itself. A record
   about another fact of the same place, sharing only "people" with "Which language is spoken
   by the people of Quessa?", is refused, because some record (about Quessa or any other place)
   shares "language", "spoken" and "people". Once the records that answer are taken, nothing
   is left above the floor: selection stops. A look-alike sharing one of two asked words
   ("national bird" for a question about the national dish) still passes: the floor errs
   towards adding, for records that mention the names.
3. A second opinion, for a record missing the names: the shipped embedding model
   (all-MiniLM-L6-v2, `retrieval: embedding`'s) compares the question and every pool record
   with their names left out, so that what is compared is the fact asked and stated, not
   whom it is about. The record must come within `SECOND_OPINION_SHARE` of the pool's most
   similar record (the whole pool again, taken records included, so that the bar does not
   sink once the answer is taken): everyday records that share a paraphrase's words ("This
   recipe serves four") are far from "the capital of". Without the
   `embeddings` extra there is no second opinion and such a record is refused, as before.
   Such a record must also cover as many of the asked words as the best record that names
   nothing else (check 2's half is for records that mention the names): "the day service"
   misses "night".

Words are bm25s's tokens without its English stop words, as lexical retrieval
(policies/retrieval.py) uses them. With `retrieval: embedding`, which is for paraphrases that
share no word with the question, check 2 is skipped: only the names, or the second opinion, are required.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

import bm25s
import numpy as np

from inspect_tinker.policies.retrieval import EMBEDDING_PACKAGE, embedding_model

_SENTENCE = re.compile(r"[^.?!]+")
_WORD = re.compile(r"[\w'-]+")
_DESCRIPTOR = re.compile(r"\b(?:[Tt]he|[Aa]n?)\s+([a-z][\w'-]*)\s+(?=[A-Z])")
# How close to the pool's most similar record (cosine, names left out) a record without the
# question's names must come. On bench/selection.py's nameless world (seed 0) a record stating
# the asked fact in other words scored 0.71 to 0.85 of the best; records sharing a paraphrase's
# word about something else ("the town hall", "a person needs") 0.09 to 0.29.
SECOND_OPINION_SHARE = 0.65


@dataclass(frozen=True)
class Verdict:
    """Whether a record plausibly answers a question, and why (or why not), in words.

    `checks_passed` counts the floor's checks the record passed before the one that refused it
    (whom it is about, what is asked, the second opinion): among refused records, the one that
    passed the most is the nearest miss, the record to look at when a failure got nothing.
    """

    relevant: bool
    reason: str
    checks_passed: int = 0


class RelevanceFloor:
    """The floor for one collection of records (the candidate pool), each given as its prompt
    (the user turns' text) and its answer (the assistant turns' text)."""

    def __init__(self, records: list[tuple[str, str]], *, lexical: bool = True, second_opinion: bool | None = None):
        """`second_opinion`: whether to ask the embedding model about records missing the
        question's names; by default, when the `embeddings` extra is installed."""
        self.lexical = lexical
        texts = [f"{prompt}\n{answer}" for prompt, answer in records]
        self._terms = [set(t) for t in _tokens(texts)] if records else []
        self._prompt_names = [_name_terms(prompt) for prompt, _ in records]
        by_answer: dict[str, list[int]] = {}
        for n, (_, answer) in enumerate(records):
            by_answer.setdefault(" ".join(answer.lower().split()), []).append(n)
        self._same_answer = [[m for m in by_answer[" ".join(answer.lower().split())] if m != n]
                             for n, (_, answer) in enumerate(records)]
        if second_opinion is None:
            second_opinion = importlib.util.find_spec(EMBEDDING_PACKAGE) is not None
        self._embedded = _embed([_without_names(t) for t in texts]) if second_opinion and records else None

    def floor(self, question: str):
        """A function of a record number (0-based, in the order given) giving its `Verdict` for
        `question`: whether that record plausibly answers it. The pool's statistics for the
        question are computed once."""
        [terms] = _tokens([question])
        terms = set(terms)
        names = sorted(terms & _name_terms(question))
        asked = terms - set(names) - _descriptor_terms(question)
        best = max((len(asked & doc) for doc in self._terms), default=0)
        # The best cover among the records that may be about the question's subject (they name
        # nothing else): a record missing the names must match it, not half of it.
        best_here = max((len(asked & doc) for doc, named in zip(self._terms, self._prompt_names)
                         if not (set(names) - doc and named - set(names))), default=0)
        similar = None
        if self._embedded is not None and names:
            similar = self._embedded @ _embed([_without_names(question)])[0]

        def verdict(document: int) -> Verdict:
            own = verdict_alone(document)
            if own.relevant:
                return own
            # A record stating word for word what a relevant record states is relevant too: the
            # two ask the same in other words ("What language is spoken in ...?" beside "Which
            # language do people speak in ...?"), and the answer is what training teaches.
            for other in self._same_answer[document]:
                if verdict_alone(other).relevant:
                    return Verdict(True, f"states the same answer as record {other + 1}, which passes")
            return own

        def verdict_alone(document: int) -> Verdict:
            doc = self._terms[document]
            missing = [n for n in names if n not in doc]
            elsewhere = sorted(self._prompt_names[document] - set(names))
            if missing and elsewhere:
                return Verdict(False, f"does not mention {', '.join(missing)}; asks about {', '.join(elsewhere)}")
            subject = (f"does not mention {', '.join(missing)} and names nothing else" if missing
                       else f"mentions {', '.join(names)}" if names else "no names to require")
            words, passed = _what_is_asked(asked, doc, best) if self.lexical else ("", True)
            if not passed:
                return Verdict(False, f"{subject}; {words}", 1)
            why = f"{subject}; {words}" if words else subject
            if not missing:
                return Verdict(True, why, 2)
            if self.lexical and len(asked & doc) < best_here:
                return Verdict(False, f"{why}; a record missing the names must cover as many as the best "
                                      f"record that names nothing else ({best_here})", 2)
            if similar is None:
                return Verdict(False, f"{why}; no second opinion (the embeddings extra is not installed)", 2)
            share = float(similar[document] / max(similar.max(), 1e-9))
            opinion = f"the embedding model rates it {share:.2f} of the pool's most similar record, names left out"
            if share >= SECOND_OPINION_SHARE:
                return Verdict(True, f"{why}; {opinion}", 3)
            return Verdict(False, f"{why}; {opinion}, under {SECOND_OPINION_SHARE:g}", 2)

        return verdict


def _what_is_asked(asked: set[str], doc: set[str], best: int) -> tuple[str, bool]:
    """Whether a record's words cover what the question asks, as the pool allows, and in words."""
    if not asked:  # the question asks nothing beyond its names
        return "", True
    if not best:
        return "no record in the pool uses any other word of the question", False
    covered = sorted(asked & doc)
    words = f"covers {len(covered)} of the question's words ({', '.join(covered) or 'none'})"
    if covered and len(covered) >= best / 2:
        return f"{words}; the best record in the pool covers {best}", True
    return f"{words}, under half of the {best} the best record in the pool covers", False


def _tokens(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en_plus", return_ids=False, show_progress=False)


def _names(text: str) -> list[str]:
    """The capitalised words of `text` that do not start a sentence."""
    return [w for sentence in _SENTENCE.findall(text) for w in _WORD.findall(sentence)[1:] if w[0].isupper()]


def _descriptor_terms(question: str) -> set[str]:
    """The tokens of the words that describe a name in `question` rather than ask about it: the
    one word between an article and a name ("the ship" in "Who built the ship Ramofen?"). They say
    what kind of thing the name is, as the name says which one; a record sharing only them ("How
    old is the ship?") shares whom it is about, not what is asked."""
    words = _DESCRIPTOR.findall(question)
    return set(_tokens([" ".join(words)])[0]) if words else set()


def _name_terms(text: str) -> set[str]:
    """The tokens of `text`'s names."""
    words = _names(text)
    return set(_tokens([" ".join(words)])[0]) if words else set()


def _without_names(text: str) -> str:
    """`text` with its names left out, so that an embedding compares what is said, not of whom."""
    names = set(_names(text))
    return re.sub(r"[\w'-]+", lambda m: "" if m.group() in names else m.group(), text)


def _embed(texts: list[str]) -> np.ndarray:
    return np.asarray(embedding_model().encode(texts, normalize_embeddings=True, show_progress_bar=False))
