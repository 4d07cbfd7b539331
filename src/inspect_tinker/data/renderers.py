"""Renderers: how a conversation becomes the text a model reads, by tinker-cookbook's names.

One rendering path for training and evaluation: a renderer is a chat template that is
installed on the tokenizer (`use_renderer`), so the training data step (data/render.py) and
the `tinker` model provider both render with `tokenizer.apply_chat_template` and the same
template. Besides the template, a renderer knows where a turn ends (the stop tokens or
strings a sampler must stop at) and whether it can show the model tools.

Names and formats are tinker-cookbook's (0.6.1, `tinker_cookbook.renderers`), so a model
trained with the cookbook is evaluated here as it was trained:
- `llama3`: Llama 3 Instruct's header format, without the "Cutting Knowledge Date" system
  message Hugging Face's stock Llama 3.1 template adds (the cookbook leaves it out too);
- `qwen3`, `qwen3_disable_thinking`, `qwen3_instruct`: Qwen3's ChatML with Hermes-style tool
  declarations, `<tool_call>` blocks and `<tool_response>` turns; the turn being produced is
  framed by a `<think>` block (empty when the turn did not reason); `qwen3_disable_thinking`
  ends the generation prompt with the empty block, `qwen3_instruct` (Qwen3 2507) has none;
- `role_colon`: "User: ...\\n\\nAssistant: ..." for base models;
- `tokenizer`: the tokenizer's own chat template, for models the cookbook has no renderer for
  (the bundled SmolLM2).
The cookbook is not a runtime dependency (it requires torch, datasets, blobfile, chz, tiktoken
and more), so the first five are written here as Jinja chat templates; tests/data/test_renderers.py
renders the same conversations with the cookbook's renderers and compares the tokens.
`role_colon` is no model's chat template at all (base models ship none), which is why it, too,
is written here rather than taken from a tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspect_tinker.errors import UsageError

TOKENIZER_RENDERER = "tokenizer"

# Jinja in the dialect of transformers' chat templates (trim_blocks, lstrip_blocks; `tojson`
# writes json.dumps's separators). Whitespace is written only inside string literals.
_LLAMA3 = (
    "{{- '<|begin_of_text|>' -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)

_ROLE_COLON = (
    "{%- if bos_token -%}{{- bos_token -}}{%- endif -%}"
    "{%- for message in messages -%}"
    "{{- message['role'] | capitalize + ': ' + message['content'] + '\\n\\n' -}}"
    "{%- endfor -%}"
    # The stop sequence is "\n\nUser:": a conversation ending with an answer (a training
    # example) ends with the "User:" that completes it, so the model learns to stop there.
    "{%- if add_generation_prompt -%}{{- 'Assistant:' -}}"
    "{%- elif messages and messages[-1]['role'] == 'assistant' -%}{{- 'User:' -}}{%- endif -%}"
)

# {frame} and {prompt_suffix} are filled per variant; see _qwen3().
_QWEN3 = (
    "{%- set ns = namespace(last_user=-1) -%}"
    "{%- for message in messages -%}{%- if message['role'] == 'user' -%}{%- set ns.last_user = loop.index0 -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- set system_first = messages and messages[0]['role'] == 'system' -%}"
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if system_first and messages[0]['content'] -%}{{- messages[0]['content'] + '\\n\\n' -}}{%- endif -%}"
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n'"
    " + 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments '"
    " + 'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n'"
    " + '{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if not (tools and loop.first and system_first) -%}"
    "{%- set opened = (tools or not loop.first) -%}"
    "{{- ('\\n' if opened else '') + '<|im_start|>' + ('user' if message['role'] == 'tool' else message['role']) + '\\n' -}}"
    "{%- set content = message['content'] or '' -%}"
    "{%- set has_text = content != '' -%}"
    # The turn being produced (the last message, an answer after a question) is framed by
    # a think block; earlier answers are history and keep only their text.
    "{%- if {frame} and message['role'] == 'assistant' and loop.last and ns.last_user >= 0 -%}"
    "{%- if '</think>' in content -%}"
    "{%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\\n') -%}"
    "{%- set content = '<think>\\n' + reasoning + '\\n</think>\\n\\n' + content.split('</think>', 1)[1].lstrip('\\n') -%}"
    "{%- elif '<think>' not in content -%}"
    "{%- set content = '<think>\\n\\n</think>\\n\\n' + content.lstrip('\\n') -%}"
    "{%- endif -%}"
    "{%- endif -%}"
    "{%- if message['role'] == 'tool' -%}{%- set content = '<tool_response>\\n' + content + '\\n</tool_response>' -%}"
    "{%- endif -%}"
    "{{- content -}}"
    "{%- for call in message.get('tool_calls') or [] -%}"
    "{%- set call = call['function'] if call['function'] is defined else call -%}"
    "{{- ('\\n' if (has_text or not loop.first) else '') + '<tool_call>\\n'"
    " + ({'name': call['name'], 'arguments': call['arguments']} | tojson) + '\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- ('\\n' if (messages or tools) else '') + '<|im_start|>assistant\\n' + {prompt_suffix} -}}"
    "{%- endif -%}"
)


def _qwen3(frame: bool, prompt_suffix: str) -> str:
    return _QWEN3.replace("{frame}", "true" if frame else "false").replace("{prompt_suffix}", prompt_suffix)


@dataclass(frozen=True)
class RendererSpec:
    """A renderer by name: its chat template (None: the tokenizer's own) and how a turn ends."""

    chat_template: str | None
    end_of_turn: str | None  # the special token ending a turn; None: found from the template (tokenizer)
    stop_strings: tuple[str, ...] = ()
    tools: bool = False  # declares tools and writes tool calls itself


RENDERERS: dict[str, RendererSpec] = {
    "llama3": RendererSpec(_LLAMA3, "<|eot_id|>"),
    "qwen3": RendererSpec(_qwen3(True, "''"), "<|im_end|>", tools=True),
    "qwen3_disable_thinking": RendererSpec(_qwen3(True, "'<think>\\n\\n</think>\\n\\n'"), "<|im_end|>", tools=True),
    "qwen3_instruct": RendererSpec(_qwen3(False, "''"), "<|im_end|>", tools=True),
    "role_colon": RendererSpec(_ROLE_COLON, None, stop_strings=("\n\nUser:",)),
    TOKENIZER_RENDERER: RendererSpec(None, None),
}


@dataclass(frozen=True)
class Renderer:
    """The renderer a tokenizer renders with (see `use_renderer`).

    `stop_tokens`: token ids that end a turn (sorted; the EOS token among them);
    `stop_strings`: text that ends a turn where no token does (`role_colon`);
    `tools`: whether the template declares tools and writes tool calls (`tools=` and a
    message's `tool_calls` reach it); when False, tool calls are written into the message
    text in the Hermes format the provider parses (see provider/messages.py).
    """

    name: str
    stop_tokens: tuple[int, ...]
    stop_strings: tuple[str, ...]
    tools: bool


def recommended_renderer(model_name: str) -> str:
    """The renderer tinker-cookbook recommends for `model_name` (a hub id), else `tokenizer`.

    Llama 3 Instruct models: `llama3`; Qwen3: `qwen3` (2507 Instruct: `qwen3_instruct`);
    base models of both families: `role_colon`; anything else renders with its own template.
    """
    org, _, name = model_name.partition("/")
    if org == "meta-llama" and name.startswith("Llama-3"):
        return "llama3" if "Instruct" in name else "role_colon"
    if org == "Qwen" and name.startswith("Qwen3-"):
        if name.endswith("-Base"):
            return "role_colon"
        return "qwen3_instruct" if "Instruct-2507" in name else "qwen3"
    return TOKENIZER_RENDERER


def use_renderer(tokenizer, name: str | None, model_name: str) -> Renderer:
    """Install renderer `name` (None: `recommended_renderer(model_name)`) on `tokenizer`.

    After this, `tokenizer.apply_chat_template` renders in the renderer's format everywhere.
    Raises UsageError for an unknown name, a special token the tokenizer lacks, or a
    tokenizer without a chat template asked to render with its own.
    """
    name = name or recommended_renderer(model_name)
    spec = RENDERERS.get(name)
    if spec is None:
        raise UsageError(f"renderer {name!r} is unknown; the renderers are: {', '.join(RENDERERS)}.")
    if spec.chat_template is None and not tokenizer.chat_template:
        raise UsageError(
            f"the tokenizer of {model_name!r} has no chat template of its own; choose a renderer "
            f"(renderer_name in the config, -M renderer= for inspect eval): {', '.join(n for n in RENDERERS if n != name)}."
        )
    if spec.end_of_turn is not None:
        end = tokenizer.convert_tokens_to_ids(spec.end_of_turn)
        if end is None or end == tokenizer.unk_token_id:
            raise UsageError(
                f"renderer {name!r} ends turns with {spec.end_of_turn}, which the tokenizer of {model_name!r} "
                f"does not have; choose the renderer of its model family (for this model: {recommended_renderer(model_name)})."
            )
        ends = [end]
    elif spec.chat_template is None:
        ends = _template_end_of_turn(tokenizer)
    else:
        ends = []
    if spec.chat_template is not None:  # checked first: a refused renderer leaves the tokenizer as it was
        tokenizer.chat_template = spec.chat_template
    stops = sorted({*ends, *([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])})
    template = tokenizer.chat_template
    renders_tools = spec.tools or (spec.chat_template is None and "tool_calls" in template)
    return Renderer(name=name, stop_tokens=tuple(stops), stop_strings=spec.stop_strings, tools=renders_tools)


def _template_end_of_turn(tokenizer) -> list[int]:
    """The special token a chat template writes right after an answer's text (`<|im_end|>`
    for ChatML), found by rendering one; empty when it writes none."""
    text = "Hello"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": text}], tokenize=False
    )
    after = tokenizer(rendered[rendered.rindex(text) + len(text):], add_special_tokens=False)["input_ids"]
    special = {i for i, token in tokenizer.added_tokens_decoder.items() if token.special}
    return [next(t for t in after if t in special)] if any(t in special for t in after) else []
