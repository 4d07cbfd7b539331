"""Write docs/configuration.md, the configuration reference, from the pydantic model itself.

Every key of `inspect_tinker.config.Config` and of the models it nests (generation, data,
eval_tasks[] and each scorer, tune), with its type, default, bounds and description, so that a
default is stated once, in the code. tests/test_readme.py checks that the page is current.

    .venv/bin/python docs/generate_configuration.py
"""

from __future__ import annotations

import inspect
import json
import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

import inspect_tinker.config
from inspect_tinker.config import Config

PAGE = Path(__file__).with_name("configuration.md")
COMMAND = ".venv/bin/python docs/generate_configuration.py"

INTRO = f"""\
<!-- Generated from inspect_tinker.config.Config by docs/generate_configuration.py: do not edit.
     Regenerate with `{COMMAND}`. -->

# Configuration reference

{inspect.cleandoc(inspect_tinker.config.__doc__ or "")}

Unknown keys are an error that names the nearest valid key. `inspect-tinker run CONFIG --set KEY=VALUE`
(and `inspect eval inspect_tinker/train_until_threshold -T KEY=VALUE`) overrides one key; a nested key
is written with dots (`--set generation.max_tokens=16`), and the value is read as YAML (numbers,
`true`/`false`, lists `[a, b]`). A default of `null` (*none* in the descriptions) means the key is
off, or chosen as its description says. What the settings do to a run is told in the topic pages
listed in the [README](../README.md#documentation).
"""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without `| None`, and whether None was allowed."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) < len(get_args(annotation)):
            return (members[0] if len(members) == 1 else Union[tuple(members)]), True
    return annotation, False


def _discriminated_models(annotation: Any) -> tuple[str, list[type[BaseModel]]] | None:
    """(discriminator key, member models) of an `Annotated[A | B, Field(discriminator=...)]` union."""
    if get_origin(annotation) is not Annotated:
        return None
    inner, *metadata = get_args(annotation)
    key = next((m.discriminator for m in metadata if isinstance(m, FieldInfo) and m.discriminator), None)
    return (key, list(get_args(inner))) if key else None


def _nested(annotation: Any) -> tuple[str, type[BaseModel] | None, tuple[str, list[type[BaseModel]]] | None]:
    """How a field nests models: ("" or "[]" for a list, the nested model, or a discriminated union)."""
    annotation, _ = _unwrap(annotation)
    suffix = ""
    if get_origin(annotation) is list:
        annotation, suffix = get_args(annotation)[0], "[]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return suffix, annotation, None
    return suffix, None, _discriminated_models(annotation)


_TYPE_NAMES = {int: "integer", float: "number", bool: "boolean", str: "string", Path: "path", Any: "any value"}


def _choices(values: tuple) -> str:
    """`a`, `b` or `c`."""
    return " or ".join(", ".join(f"`{v}`" for v in values).rsplit(", ", 1))


def _type(annotation: Any) -> str:
    """A field's type in words: `integer`, `number or `auto``, `list of strings`, ..."""
    annotation, optional = _unwrap(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        values = (*args, "null") if optional else args
        return ("one of " if len(values) > 2 else "") + _choices(values)
    if origin in (Union, types.UnionType):
        text = " or ".join(_type(a) for a in args)
    elif origin is list:
        element = args[0]
        text = (f"list, each {_type(element)}" if get_origin(element) is Literal
                else f"list of {_TYPE_NAMES[element]}s" if element in _TYPE_NAMES else f"list of {_type(element)}")
    elif origin is dict:
        text = f"mapping ({_type(args[0])} → {_type(args[1])})"
    elif origin is tuple:
        text = "[" + ", ".join(_type(a) for a in args) + "]"
    elif origin is Annotated:  # a bounded element, as in tuple[int, Annotated[int, Field(le=...)]]
        bounds = _bounds([m for info in args[1:] if isinstance(info, FieldInfo) for m in info.metadata])
        text = f"{_type(args[0])} {bounds}".strip()
    else:
        text = _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return f"{text} or `null`" if optional else text


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 1000 else str(value)


def _bounds(metadata: list[Any]) -> str:
    """A field's constraints: `≥ 1, ≤ 1,000`, `not empty`."""
    signs = {annotated_types.Ge: ("≥", "ge"), annotated_types.Gt: (">", "gt"),
             annotated_types.Le: ("≤", "le"), annotated_types.Lt: ("<", "lt")}
    parts = []
    for item in metadata:
        if type(item) in signs:
            sign, attribute = signs[type(item)]
            parts.append(f"{sign} {_number(getattr(item, attribute))}")
        elif isinstance(item, annotated_types.MinLen):
            parts.append("not empty" if item.min_length == 1 else f"length ≥ {item.min_length}")
    return ", ".join(parts)


def _value(value: Any) -> str:
    """A value as it is written in a YAML config."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, BaseModel):  # a nested section: only what differs from its own keys' defaults
        fields = type(value).model_fields
        value = {k: v for k, v in value if v != fields[k].get_default(call_default_factory=True)}
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _default(field: FieldInfo) -> str:
    """A field's default as written in a config, or `required`."""
    if field.default_factory is not None:
        return f"`{_value(field.default_factory())}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{_value(field.default)}`"


def _heading(prefix: str) -> str:
    """The section title of the keys under `prefix`: `eval_tasks[].` -> `eval_tasks`."""
    return prefix.rstrip(".").removesuffix("[]")


def _union_heading(name: str) -> str:
    """The section title of a discriminated union's members: `scorer` -> `Scorers`."""
    return f"{name.capitalize()}s"


def _table(model: type[BaseModel], prefix: str, skip: str | None = None) -> tuple[list[str], list[tuple]]:
    """The rows of a model's table, and the sections its nested models get: (prefix, model, union)."""
    rows = ["| key | type | default | bounds | description |", "|---|---|---|---|---|"]
    nested = []
    for name, field in model.model_fields.items():
        if name == skip:
            continue
        suffix, inner, union = _nested(field.annotation)
        kind = _type(field.annotation)
        if inner is not None:
            nested.append((f"{prefix}{name}{suffix}.", inner, None))
            section = _heading(f"{prefix}{name}{suffix}.")
            kind = f"{'list of mappings' if suffix else 'mapping'}, keys in [{section}](#{_anchor(section)})"
        elif union is not None:
            nested.append((f"{prefix}{name}.", None, union))
            title = _union_heading(name)
            kind = f"a {name} name, or a mapping with `{union[0]}` (see [{title}](#{_anchor(title)}))"
            kind += " or `null`" if _unwrap(field.annotation)[1] else ""
        rows.append(
            f"| `{prefix}{name}` | {_cell(kind)} | {_default(field)} | {_cell(_bounds(field.metadata))} "
            f"| {_cell(field.description or '')} |"
        )
    return rows, nested


def _doc(model: type[BaseModel]) -> str:
    return inspect.cleandoc(model.__doc__ or "")


def _sections(prefix: str, model: type[BaseModel] | None, union: tuple[str, list[type[BaseModel]]] | None) -> list[str]:
    """A model's section, then its nested models' sections; a discriminated union gets one subsection a member."""
    if model is not None:
        rows, nested = _table(model, prefix)
        lines = [f"## {_heading(prefix) or 'Top-level keys'}", "", _doc(model), "", *rows, ""]
        for section in nested:
            lines += _sections(*section)
        return lines
    key, members = union
    lines = [f"## {_union_heading(_heading(prefix).rsplit('.', 1)[-1])}", "", f"`{_heading(prefix)}` picks one of these by `{key}`; a bare string is shorthand "
             f"for `{{{key}: STRING}}`.", ""]
    for member in members:
        tag = get_args(member.model_fields[key].annotation)[0]
        rows, _ = _table(member, prefix, skip=key)
        lines += [f"### {tag}", "", _doc(member), ""]
        lines += [*rows, ""] if len(rows) > 2 else ["No options.", ""]
    return lines


def render() -> str:
    """The whole page, as `docs/configuration.md` must hold it."""
    return INTRO + "\n" + "\n".join(_sections("", Config, None)).rstrip() + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
