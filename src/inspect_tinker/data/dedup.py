"""Exact and near duplicates: the first record of each cluster is kept, later ones are named.

Duplicates make a model repeat some facts more than others and make a small training file
look larger than it is. Both detectors see records one at a time, in file order, and hold a
fixed-size fingerprint per kept record, never the records themselves.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
from datasketch import MinHash, MinHashLSH

from inspect_tinker.data.normalize import NormalizedConversation

# Word bigrams. Training records are mostly short (a question and an answer of 15 to 40
# words): with bigrams one changed word in a 20-word record leaves a Jaccard similarity of
# about 0.8, with trigrams only about 0.7; single words ignore word order, and in the demo
# data two different facts phrased alike already reach 0.83 with them (0.53 with bigrams).
SHINGLE_WORDS = 2
NUM_PERM = 128  # MinHash size: the similarity estimate's error is about 0.04 at 0.8
_ROWS_PER_BLOCK = 4096


class ExactDuplicates:
    """Finds records identical to an earlier one after normalisation (case, punctuation, spacing)."""

    def __init__(self) -> None:
        self._first: dict[bytes, str] = {}

    def first_copy(self, conversation: NormalizedConversation, where: str) -> str | None:
        """Where the earlier identical record is; None (and `where` is remembered) for a new one."""
        text = "\x1e".join(f"{role}\x1f{' '.join(words)}" for role, words in conversation)
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        first = self._first.get(key)
        if first is None:
            self._first[key] = where
        return first


class NearDuplicates:
    """Finds records whose word-bigram Jaccard similarity to an earlier kept record is >= threshold.

    MinHash signatures with locality-sensitive hashing (datasketch) find candidates without
    comparing every pair; each candidate is then confirmed on its stored signature, so
    LSH's false positives are not dropped. System messages are left out: one long system
    prompt shared by every record would make them all look alike.
    """

    def __init__(self, threshold: float):
        self.threshold = threshold
        # Band keys hashed to 8 bytes: the index then costs about the same per record
        # whatever the number of permutations.
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, hashfunc=_short_hash)
        # CRC-32 hashes a shingle ten times faster than datasketch's default SHA-1 in Python
        # and, unlike Python's hash(), gives the same result in every process.
        self._minhash = MinHash(num_perm=NUM_PERM, hashfunc=zlib.crc32)
        self._where: list[str] = []
        self._signatures: list[np.ndarray] = []  # blocks of _ROWS_PER_BLOCK signatures

    def first_similar(self, conversation: NormalizedConversation, where: str) -> tuple[str, float] | None:
        """(where, estimated similarity) of the most similar earlier kept record at or over the
        threshold; None when there is none, and then this record is kept and indexed."""
        shingles = _shingles(conversation)
        if not shingles:
            return None
        self._minhash.clear()
        self._minhash.update_batch(shingles)
        signature = self._minhash.hashvalues
        best: tuple[str, float] | None = None
        for key in self._lsh.query(self._minhash):
            similarity = float(np.mean(self._signature(key) == signature))
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (self._where[key], similarity)
        if best is None:
            self._add(signature, where)
        return best

    def _signature(self, key: int) -> np.ndarray:
        block, row = divmod(key, _ROWS_PER_BLOCK)
        return self._signatures[block][row]

    def _add(self, signature: np.ndarray, where: str) -> None:
        key = len(self._where)
        block, row = divmod(key, _ROWS_PER_BLOCK)
        if block == len(self._signatures):
            self._signatures.append(np.empty((_ROWS_PER_BLOCK, NUM_PERM), dtype=signature.dtype))
        self._signatures[block][row] = signature
        self._where.append(where)
        self._lsh.insert(key, self._minhash, check_duplication=False)


def _shingles(conversation: NormalizedConversation) -> set[bytes]:
    words = [w for role, message_words in conversation if role != "system" for w in message_words]
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)}


def _short_hash(band: bytes) -> bytes:
    return hashlib.blake2b(band, digest_size=8).digest()
