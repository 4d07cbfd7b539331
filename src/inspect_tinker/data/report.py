"""The data report: what came in, what was dropped and why, what went out. Plain data.

`to_dict()` is the full report (`data_report.json`, `inspect-tinker data check`); `summary()` is
the short form shown at the start of every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inspect_tinker.data.checks import QUALITY_CHECKS

# In the order the pipeline applies them.
DROP_REASONS = ("invalid", *QUALITY_CHECKS, "contaminated", "exact_duplicate", "near_duplicate", "too_short", "too_long")


@dataclass
class DataReport:
    file: str
    format: str
    records: int = 0
    examples: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    dropped_records: list[dict] = field(default_factory=list)  # {where, reason, detail}
    truncated_records: list[dict] = field(default_factory=list)  # {where, detail}: cut to max_seq_length, kept
    duplicate_clusters: dict[tuple[str, str], dict] = field(default_factory=dict)  # (kind, kept) -> cluster
    contamination: dict = field(default_factory=dict)  # settings and counts; hits are below
    contamination_hits: list[dict] = field(default_factory=list)  # {where, task, sample_id, matched, dropped}
    token_lengths: dict = field(default_factory=dict)
    total_tokens: int = 0
    target_tokens: int = 0

    def drop(self, where: str, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        self.dropped_records.append({"where": where, "reason": reason, "detail": detail})

    def truncate(self, where: str, detail: str) -> None:
        self.truncated_records.append({"where": where, "detail": detail})

    @property
    def truncated(self) -> int:
        return len(self.truncated_records)

    def add_duplicate(self, kind: str, kept: str, where: str, similarity: float | None = None) -> None:
        cluster = self.duplicate_clusters.setdefault((kind, kept), {"kind": kind, "kept": kept, "duplicates": []})
        cluster["duplicates"].append(where if similarity is None else {"where": where, "similarity": round(similarity, 3)})

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "format": self.format,
            "records": self.records,
            "examples": self.examples,
            "dropped": self.dropped,
            "dropped_total": self.dropped_total,
            "truncated": self.truncated,
            "token_lengths": self.token_lengths,
            "total_tokens": self.total_tokens,
            "target_tokens": self.target_tokens,
            "contamination": {**self.contamination, "hits": self.contamination_hits},
            "duplicate_clusters": list(self.duplicate_clusters.values()),
            "dropped_records": self.dropped_records,
            "truncated_records": self.truncated_records,
        }

    def summary(self, limit: int = 10) -> dict:
        """The counts, with at most `limit` examples of each list."""
        full = self.to_dict()
        invalid = [d for d in self.dropped_records if d["reason"] == "invalid"]
        return {
            **{k: full[k] for k in ("file", "format", "records", "examples", "dropped", "dropped_total", "truncated",
                                    "token_lengths", "total_tokens", "target_tokens")},
            "invalid": invalid[:limit],
            "duplicate_clusters": len(self.duplicate_clusters),
            "contamination": {**self.contamination, "hits": len(self.contamination_hits)},
            "contamination_hits": self.contamination_hits[:limit],
        }


def token_length_stats(lengths: list[int] | np.ndarray) -> dict:
    """min, percentiles, max and mean of token counts; empty for no examples."""
    if len(lengths) == 0:
        return {}
    a = np.asarray(lengths)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"min": int(a.min()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "max": int(a.max()), "mean": round(float(a.mean()), 1)}
