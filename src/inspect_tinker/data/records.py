"""Turn one raw record into a chat conversation, or say exactly what is wrong with it.

Record shapes (field names as written here, or mapped to the file's own names with
`data.fields`, roles mapped with `data.roles`):
- `{"instruction": str, "input"?: str, "output": str, "system"?: str}` (Alpaca)
- `{"prompt": str, "completion": str, "system"?: str}`
- `{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}` (multi-turn)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Message = dict[str, str]
Conversation = list[Message]

ROLES = ("system", "user", "assistant")
# Lone surrogates come from JSON escapes like "\ud800" or from undecodable CSV bytes; no
# tokenizer can encode them, so they are invalid text rather than a quality question.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


# The record shapes, each by the fields that mark it (see the module docstring).
_SHAPES = (("messages",), ("prompt", "completion"), ("instruction", "output"))


class InvalidRecord(ValueError):
    """A record that cannot become a conversation; the message says why."""


def record_to_conversation(
    record: Any, fields: Mapping[str, str] | None = None, roles: Mapping[str, str] | None = None
) -> Conversation:
    """Convert one parsed record into a list of {role, content} messages.

    `fields` maps our field names (`data.settings.RecordField`) to the file's; `roles` maps the
    file's role names to ours (ROLES). Raises InvalidRecord naming the field and the problem.
    """
    fields = fields or {}
    roles = roles or {}

    def name(field: str) -> str:
        return fields.get(field, field)

    if not isinstance(record, dict):
        raise InvalidRecord(f"expected an object with fields, got {_type_name(record)}")
    shapes = [shape for shape in _SHAPES if any(name(f) in record for f in shape)]
    if len(shapes) > 1:
        # Training on one of them would silently drop the other's text.
        named = " and ".join("/".join(repr(name(f)) for f in shape) for shape in shapes)
        raise InvalidRecord(f"record has both {named}; keep the fields of one record shape")
    if name("messages") in record:
        return _chat_conversation(record[name("messages")], name, roles)
    if name("prompt") in record or name("completion") in record:
        user, answer = _text(record, name("prompt")), _text(record, name("completion"))
    elif name("instruction") in record or name("output") in record:
        user, answer = _text(record, name("instruction")), _text(record, name("output"))
        extra = _text(record, name("input"), required=False)
        if extra:
            user = f"{user}\n\n{extra}"
    else:
        expected = ", ".join(repr(name(f)) for f in ("messages", "prompt", "instruction"))
        raise InvalidRecord(f"record has none of the fields {expected} (map other names with data.fields)")
    system = _text(record, name("system"), required=False)
    conversation = [{"role": "system", "content": system}] if system else []
    return conversation + [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def _chat_conversation(messages: Any, name, roles: Mapping[str, str]) -> Conversation:
    field = name("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRecord(f"field {field!r} must be a non-empty list of messages")
    conversation = []
    for i, message in enumerate(messages):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            raise InvalidRecord(f"{where} must be an object with {name('role')!r} and {name('content')!r}")
        raw_role = message.get(name("role"))
        role = roles.get(raw_role, raw_role) if isinstance(raw_role, str) else raw_role
        if role not in ROLES:
            raise InvalidRecord(
                f"{where} has unknown role {raw_role!r} (use system, user or assistant, or map it with data.roles)"
            )
        try:
            content = _text(message, name("content"))
        except InvalidRecord as err:
            raise InvalidRecord(f"{where}: {err}") from None
        conversation.append({"role": role, "content": content})
    spoken = [m["role"] for m in conversation]
    if "assistant" not in spoken:
        raise InvalidRecord("no assistant message to train on")
    first_answer = spoken.index("assistant")
    if "user" not in spoken[:first_answer]:
        raise InvalidRecord(f"{field}[{first_answer}] answers before any user message")
    return conversation


def _text(record: dict, field: str, required: bool = True) -> str:
    """The field's string value; "" for an absent optional field. Raises InvalidRecord otherwise."""
    value = record.get(field)
    if value is None:
        if required:
            raise InvalidRecord(f"missing field {field!r}")
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"field {field!r} must be a string, got {_type_name(value)}")
    if not value.isascii() and _SURROGATE.search(value):
        raise InvalidRecord(f"field {field!r} is not valid Unicode text (invalid bytes or a lone surrogate escape)")
    if required and not value.strip():
        raise InvalidRecord(f"field {field!r} is empty")
    return value if value.strip() else ""


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
