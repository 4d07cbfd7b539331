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

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


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
        if isinstance(m, ChatMessageAssistant) and m.tool_calls:
            calls = [{"name": c.function, "arguments": c.arguments} for c in m.tool_calls]
            if renderer.tools:
                message["tool_calls"] = [{"type": "function", "function": c} for c in calls]
            else:
                message["content"] = "\n".join([m.text] * bool(m.text) + [hermes_call(c) for c in calls])
        if isinstance(m, ChatMessageTool):
            message["name"] = m.function or ""
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
    """The answer's text without its `<tool_call>` blocks, and those blocks as ToolCalls.

    A block that is not a JSON object with a string `name` and an object `arguments` becomes
    a ToolCall with a `parse_error` (Inspect reports it to the model), never an exception.
    Call ids are `call_<choice>_<n>`: the format carries none.
    """
    calls = []
    for n, match in enumerate(_TOOL_CALL.finditer(text)):
        call_id, raw = f"call_{choice}_{n}", match.group(1).strip()
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as err:
            calls.append(ToolCall(id=call_id, function="", arguments={}, parse_error=f"invalid JSON in <tool_call>: {err}: {raw}"))
            continue
        name = body.get("name") if isinstance(body, dict) else None
        arguments = body.get("arguments", {}) if isinstance(body, dict) else None
        if isinstance(arguments, str):  # some models write the arguments as a JSON string
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                pass
        if not isinstance(name, str) or not isinstance(arguments, dict):
            calls.append(ToolCall(
                id=call_id, function=name if isinstance(name, str) else "", arguments={},
                parse_error=f'<tool_call> needs {{"name": "<tool>", "arguments": {{...}}}}; got: {raw}',
            ))
            continue
        calls.append(ToolCall(id=call_id, function=name, arguments=arguments))
    return _TOOL_CALL.sub("", text).strip(), calls
