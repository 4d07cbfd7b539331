"""Read training records from JSONL and turn each valid one into a chat conversation.

Two record shapes are understood:
- `{"instruction": str, "input"?: str, "output": str, "system"?: str}`
- `{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}`
Invalid lines are collected with their line number and reason, never silently lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaltune.errors import UsageError

Message = dict[str, str]
Conversation = list[Message]
_ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class DroppedRecord:
    line: int
    reason: str


@dataclass
class LoadedRecords:
    """Conversations that passed the checks, and what was dropped (line numbers are 1-based)."""

    path: Path
    conversations: list[Conversation] = field(default_factory=list)
    dropped: list[DroppedRecord] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.conversations) + len(self.dropped)


def _nonempty_str(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if key not in record:
        raise ValueError(f"missing field {key!r}")
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"field {key!r} is empty")
    return value


def record_to_conversation(record: Any) -> Conversation:
    """Convert one parsed record into a conversation; raise ValueError saying what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("field 'messages' must be a non-empty list")
        conversation = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise ValueError(f"messages[{i}] must be an object with 'role' and 'content'")
            role = m.get("role")
            if role not in _ROLES:
                raise ValueError(f"messages[{i}] has unknown role {role!r} (use system, user or assistant)")
            try:
                content = _nonempty_str(m, "content")
            except ValueError as err:
                raise ValueError(f"messages[{i}]: {err}") from None
            conversation.append({"role": role, "content": content})
        if not any(m["role"] == "assistant" for m in conversation):
            raise ValueError("no assistant message to train on")
        return conversation
    if "instruction" in record or "output" in record:
        instruction = _nonempty_str(record, "instruction")
        output = _nonempty_str(record, "output")
        extra = record.get("input")
        if extra is not None and not isinstance(extra, str):
            raise ValueError("field 'input' must be a string")
        user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
        conversation = []
        system = record.get("system")
        if isinstance(system, str) and system.strip():
            conversation.append({"role": "system", "content": system})
        conversation += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
        return conversation
    raise ValueError("record has neither 'messages' nor 'instruction'/'output' fields")


def load_training_records(path: Path, strict: bool = False) -> LoadedRecords:
    """Read a JSONL file into conversations.

    Invalid records are listed in `dropped`; with `strict`, the first one raises UsageError
    naming the file and line. A file with no valid record at all is always an error.
    """
    loaded = LoadedRecords(path=path)
    with path.open(encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"invalid JSON ({err.msg})") from None
                loaded.conversations.append(record_to_conversation(record))
            except ValueError as err:
                if strict:
                    raise UsageError(
                        f"{path}:{line_no}: {err}. Fix the record, or drop `strict: true` to skip invalid records."
                    ) from None
                loaded.dropped.append(DroppedRecord(line_no, str(err)))
    if not loaded.conversations:
        raise UsageError(f"{path}: no valid training record ({len(loaded.dropped)} invalid, see the format in the README).")
    return loaded
