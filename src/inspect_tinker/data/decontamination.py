"""Decontamination: find training records that contain an evaluation input.

A model trained on the evaluation questions passes the bar by memory, which makes the bar
meaningless. Each training record is compared with every input of every configured
evaluation task by word n-grams, after the same normalisation used for duplicates
(case, punctuation and spacing ignored).

The n-gram length. For long evaluation inputs (passages, documents), a record is
contaminated when it shares any 13-word sequence with an input: 13 is what GPT-3's and
lm-evaluation-harness's decontamination use, long enough that stock phrases ("according to
the passage, what is the ...") do not match by chance, short enough that a copied passage
matches even when edited around it. Most QA inputs are shorter than 13 words; such an input
is matched whole, so a question copied into a training record is caught while a
paraphrase (the demo's evaluation asks its facts in other words) is not. Inputs of fewer
than MIN_INPUT_WORDS words ("Hi", "Translate: cat") would match ordinary text; they are
counted in the report as too short to check.

The matching is written here rather than taken from a library: it is a dictionary lookup
of word tuples, and the libraries that do it (lm-evaluation-harness's decontamination)
come with a whole evaluation framework.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inspect_tinker.data.normalize import NormalizedConversation, normalize_conversation, normalized_words

DEFAULT_NGRAM_WORDS = 13
MIN_INPUT_WORDS = 3


@dataclass(frozen=True)
class EvalInput:
    """One evaluation sample's input as text, and where it comes from."""

    task: str
    sample_id: str
    text: str


@dataclass(frozen=True)
class ContaminationHit:
    task: str
    sample_id: str
    matched: str  # the shared words, normalised


def evaluation_inputs(tasks: Iterable) -> list[EvalInput]:
    """The input text of every sample of built Inspect tasks, whatever the task kind.

    A chat-message input is taken as the text of its non-system messages: a system prompt
    shared by every sample is instructions, not the question.
    """
    inputs = []
    for task in tasks:
        for index, sample in enumerate(task.dataset, start=1):
            if isinstance(sample.input, str):
                text = sample.input
            else:
                text = "\n".join(m.text for m in sample.input if m.role != "system")
            sample_id = str(sample.id) if sample.id is not None else str(index)
            inputs.append(EvalInput(task.name, sample_id, text))
    return inputs


class ContaminationIndex:
    """The n-grams of the evaluation inputs, ready to be looked up for each training record."""

    def __init__(self, inputs: Iterable[EvalInput], ngram_words: int = DEFAULT_NGRAM_WORDS):
        self.ngram_words = ngram_words
        self.inputs = 0
        self.too_short = 0
        self._owners: dict[tuple[str, ...], list[EvalInput]] = {}
        # First word -> the n-gram lengths starting with it: most positions of a training
        # record start no evaluation n-gram at all and cost one set lookup.
        self._lengths: dict[str, set[int]] = {}
        for item in inputs:
            self.inputs += 1
            words = normalized_words(item.text)
            if len(words) < MIN_INPUT_WORDS:
                self.too_short += 1
                continue
            n = min(ngram_words, len(words))
            for i in range(len(words) - n + 1):
                gram = tuple(words[i : i + n])
                owners = self._owners.setdefault(gram, [])
                if not owners or owners[-1] is not item:
                    owners.append(item)
                self._lengths.setdefault(gram[0], set()).add(n)

    def hits(self, conversation: NormalizedConversation) -> list[ContaminationHit]:
        """One hit per evaluation sample whose input shares an n-gram with the conversation."""
        if not self._owners:
            return []
        words = [w for _, message_words in conversation for w in message_words]
        found: dict[tuple[str, str], ContaminationHit] = {}
        for i, word in enumerate(words):
            for n in self._lengths.get(word, ()):
                gram = tuple(words[i : i + n])
                for item in self._owners.get(gram, ()):
                    found.setdefault((item.task, item.sample_id), ContaminationHit(item.task, item.sample_id, " ".join(gram)))
        return list(found.values())


def overlapping_inputs(inputs: Iterable[EvalInput], index: ContaminationIndex) -> dict[EvalInput, list[ContaminationHit]]:
    """The inputs (a reward task's prompts, say) that share an n-gram with an evaluation input of
    `index`, by the same rule as training records, and what each hits."""
    found = {}
    for item in inputs:
        if hits := index.hits(normalize_conversation([{"role": "user", "content": item.text}])):
            found[item] = hits
    return found
