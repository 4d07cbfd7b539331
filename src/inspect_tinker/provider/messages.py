"""Between Inspect's chat messages and a chat template: messages and tools in, tool calls out.

Messages become the dicts chat templates take (`role`, `content`, an answer's `tool_calls`,
a tool result's `name`); tools become OpenAI-style function schemas. The model's tool calls
come back in the Hermes format Qwen and many others use, `<tool_call>{"name": ..,
"arguments": {..}}</tool_call>`, parsed into Inspect ToolCalls. A template that cannot write
tool calls itself (renderer.tools False) gets them written into the answer's text in that same
format, so a model sees its earlier calls the way it made them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageTool
from inspect_ai.tool import ToolCall, ToolInfo

from inspect_tinker.data.renderers import Renderer

# A block ends at its closing tag, or, never closed, at the end of the answer.
_TOOL_CALL = re.compile(r"<tool_call>(?P<body>.*?)(?P<close></tool_call>|\Z)", re.DOTALL)
_XML_FUNCTION = re.compile(r"<function=(?P<name>[^>\n]+)>\s*(?P<body>.*?)\s*</function>", re.DOTALL)
_XML_PARAMETER = re.compile(r"<parameter=(?P<name>[^>\n]+)>\s*(?P<value>.*?)\s*</parameter>", re.DOTALL)


def template_messages(messages: list[ChatMessage], renderer: Renderer) -> list[dict[str, Any]]:
    """Inspect messages as chat-template dicts (system messages merged into one, first).

    Several system messages (a task's and `system_message`'s, or one injected mid-way)
    become one at the start: most templates accept a system message only there.
    """
    system = "\n\n".join(m.text for m in messages if m.role == "system" and m.text)
    converted = [{"role": "system", "content": system}] if system else []
    for m in messages:
        if m.role == "system":
            continue
        message: dict[str, Any] = {"role": m.role, "content": m.text}
        # A call that did not parse is in the answer's text as the model wrote it (parse_tool_calls).
        parsed = [c for c in (m.tool_calls or []) if c.parse_error is None] if isinstance(m, ChatMessageAssistant) else []
        if parsed:
            calls = [{"name": c.function, "arguments": c.arguments} for c in parsed]
            if renderer.tools:
                message["tool_calls"] = [{"type": "function", "id": c.id, "function": f} for c, f in zip(parsed, calls)]
            else:
                message["content"] = "\n".join([m.text] * bool(m.text) + [hermes_call(c) for c in calls])
        if isinstance(m, ChatMessageTool):
            message["name"] = m.function or ""
            if m.tool_call_id:  # templates that pair results with calls by id (and the cookbook's messages) need it
                message["tool_call_id"] = m.tool_call_id
            if m.error is not None:
                message["content"] = f"Error: {m.error.message}"
        converted.append(message)
    return converted


def hermes_call(call: dict[str, Any]) -> str:
    """A tool call as a model writes it in the Hermes format."""
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


def tool_schemas(tools: list[ToolInfo]) -> list[dict[str, Any]]:
    """Inspect tools as the function schemas chat templates declare (`tools=`)."""
    return [
        {"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.parameters.model_dump(exclude_none=True),
        }}
        for t in tools
    ]


def parse_tool_calls(text: str, choice: int) -> tuple[str, list[ToolCall]]:
    """The answer's text without its well-formed `<tool_call>` blocks, and every block as a ToolCall.

    As tinker-cookbook's renderers parse (0.6.1, `renderers/base.py` and `qwen3_5.py`): a block
    holds either Hermes JSON, `{"name": "<tool>", "arguments": {...}}`, or Qwen's XML form,
    `<function=<tool>><parameter=<key>>value</parameter>...</function>` (a value is JSON when
    it parses as JSON, else text). A block that is neither, or a `<tool_call>` never closed,
    becomes a ToolCall with a `parse_error` (Inspect reports it to the model), never an
    exception; its text stays in the answer, so the model is shown back what it wrote.
    Call ids are `call_<choice>_<n>`: the formats carry none.
    """
    calls, kept, end = [], [], 0
    for n, match in enumerate(_TOOL_CALL.finditer(text)):
        call = _parsed_call(match.group("body"), f"call_{choice}_{n}", closed=bool(match.group("close")))
        calls.append(call)
        kept.append(text[end:match.start()] + (match.group(0) if call.parse_error else ""))
        end = match.end()
    return ("".join(kept) + text[end:]).strip(), calls


def _parsed_call(body: str, call_id: str, *, closed: bool) -> ToolCall:
    raw = body.strip()

    def malformed(why: str) -> ToolCall:
        return ToolCall(id=call_id, function="", arguments={}, parse_error=f"{why}: <tool_call>{body}")

    if not closed:
        return malformed("<tool_call> is not closed by </tool_call>")
    if raw.startswith("<function="):
        return _xml_call(raw, call_id) or malformed(
            "<tool_call> needs <function=<tool>><parameter=<key>>value</parameter>...</function>"
        )
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as err:
        return malformed(f"invalid JSON in <tool_call>: {err}")
    name = parsed.get("name") if isinstance(parsed, dict) else None
    arguments = parsed.get("arguments") if isinstance(parsed, dict) else None
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            pass
    if not isinstance(name, str) or not name or not isinstance(arguments, dict):
        return malformed('<tool_call> needs {"name": "<tool>", "arguments": {...}}')
    return ToolCall(id=call_id, function=name, arguments=arguments)


def _xml_call(raw: str, call_id: str) -> ToolCall | None:
    """Qwen's XML tool call as a ToolCall; None when it is not exactly one function of parameters."""
    function = _XML_FUNCTION.fullmatch(raw)
    if function is None or not function.group("name").strip():
        return None
    arguments, body, end = {}, function.group("body"), 0
    for parameter in _XML_PARAMETER.finditer(body):
        if body[end:parameter.start()].strip() or not parameter.group("name").strip():
            return None
        value = parameter.group("value").strip("\n")
        try:
            arguments[parameter.group("name").strip()] = json.loads(value)
        except json.JSONDecodeError:
            arguments[parameter.group("name").strip()] = value
        end = parameter.end()
    if body[end:].strip():
        return None
    return ToolCall(id=call_id, function=function.group("name").strip(), arguments=arguments)
