"""The `data` section of the run configuration: how the data step reads and checks records.

Defined here, beside the step it steers, so that the data step never imports the run's
configuration module; `config.Config` holds it as its `data` key.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

RecordField = Literal["instruction", "input", "output", "system", "prompt", "completion", "messages", "role", "content"]
QualityCheck = Literal["same_as_prompt", "control_characters", "broken_encoding", "no_words_in_answer"]


class DataConfig(BaseModel):
    """How training records are read, checked, deduplicated and decontaminated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)  # strict, as every section of the config

    format: Literal["auto", "jsonl", "json", "csv", "parquet"] = Field(
        "auto", description="File format; `auto` goes by the suffix (.jsonl, .json, .csv, .parquet)."
    )
    fields: dict[RecordField, str] = Field(
        default_factory=dict,
        description="Our field name -> the file's, e.g. {instruction: question, output: answer} or "
        "{messages: conversations, role: from, content: value}.",
    )
    roles: dict[str, Literal["system", "user", "assistant"]] = Field(
        default_factory=dict, description="The file's role names -> ours, e.g. {human: user, gpt: assistant}."
    )
    train_on: Literal["all_assistant_turns", "last_assistant_turn"] = Field(
        "all_assistant_turns", description="Which assistant turns of a multi-turn conversation carry loss."
    )
    checks: list[QualityCheck] = Field(
        default_factory=lambda: list(get_args(QualityCheck)),
        description="Quality checks that drop a record; remove one to keep what it would drop.",
    )
    min_target_tokens: int = Field(1, ge=1, description="Examples with fewer trained (assistant) tokens are dropped.")
    too_long: Literal["truncate", "drop"] = Field(
        "truncate", description="Examples longer than max_seq_length are cut to it, or dropped."
    )
    exact_dedup: bool = Field(True, description="Drop records identical to an earlier one after normalisation.")
    near_duplicate_threshold: float | None = Field(
        0.8, ge=0.5, le=0.98,  # above 0.98 MinHash LSH with 128 permutations has fewer than 2 bands
        description="Drop records whose word-bigram Jaccard similarity to an earlier one is at least this (0.5 to 0.98); "
        "null turns it off.",
    )
    decontamination: Literal["drop", "warn", "off"] = Field(
        "drop", description="Training records containing an evaluation input: dropped, only reported, or not looked for."
    )
    contamination_ngram_words: int = Field(
        13, ge=3, description="Shared word n-gram length that counts as contamination; shorter eval inputs must appear whole."
    )
