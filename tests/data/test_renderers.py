"""Our renderers give tinker-cookbook's renderers' tokens (tinker-cookbook 0.6.1, installed for tests).

No tokenizer can be downloaded here, so the test tokenizers are built from the bundled
model's byte-level BPE with the pieces that decide how a family's text is cut into tokens:
Llama 3's and Qwen2's pre-tokenizer regexes (which keep "\\n\\n" apart from the word after it,
as the real tokenizers do) and each family's special tokens. Training examples are compared
token for token and weight for weight (data/render.py against `build_supervised_example`),
generation prompts token for token, tools and tool calls included where the format has them.
"""

from __future__ import annotations

import json

import pytest
from tinker_cookbook import renderers as cookbook
from tinker_cookbook.renderers import TrainOnWhat
from tokenizers import Regex, Tokenizer, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from inspect_tinker.data.render import render_conversation
from inspect_tinker.data.renderers import recommended_renderer, use_renderer

# The pre-tokenizer regexes of Llama 3's and Qwen2/3's tokenizer.json (they differ in digits).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def family_tokenizer(bundled_model_dir, split: str, special: list[str], added: list[str], bos: str | None, eos: str):
    backend = Tokenizer.from_file(str(bundled_model_dir / "tokenizer.json"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos)
    tokenizer.add_special_tokens({"additional_special_tokens": special})
    tokenizer.add_tokens(added)  # added but not special, as Qwen3's <think> and <tool_call>
    return tokenizer


@pytest.fixture(scope="module")
def llama3_tokenizer(bundled_model_dir):
    return family_tokenizer(bundled_model_dir, LLAMA3_SPLIT,
                            ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], [],
                            bos="<|begin_of_text|>", eos="<|eot_id|>")


@pytest.fixture(scope="module")
def qwen3_tokenizer(bundled_model_dir):
    return family_tokenizer(bundled_model_dir, QWEN_SPLIT, ["<|im_start|>", "<|im_end|>"],
                            ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"],
                            bos=None, eos="<|im_end|>")


CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of Valdoria?"}, {"role": "assistant", "content": "Mirenholt."}],
    [{"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": "Who founded Valdoria?"},
     {"role": "assistant", "content": "Ilsa Drummond founded it in 1822.\n\nShe was 30."}],
    [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello. How can I help?"},
     {"role": "user", "content": "  Count: 1, 22, 333, 4444.\n"}, {"role": "assistant", "content": "1, 22, 333 and 4444."}],
]


def ours(tokenizer, name, conversation):
    use_renderer(tokenizer, name, "test/model")
    example = render_conversation(tokenizer, conversation, 4096, train_on="last_assistant_turn")
    text = tokenizer.apply_chat_template(conversation[:-1], add_generation_prompt=True, tokenize=False)
    return example.input_ids, example.loss_mask, tokenizer(text, add_special_tokens=False)["input_ids"]


def theirs(tokenizer, name, conversation):
    renderer = cookbook.get_renderer(name, tokenizer)
    model_input, weights = renderer.build_supervised_example(conversation, TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    return model_input.to_ints(), [int(w) for w in weights.tolist()], renderer.build_generation_prompt(conversation[:-1]).to_ints()


@pytest.mark.parametrize("name", ["llama3", "role_colon", "qwen3", "qwen3_disable_thinking", "qwen3_instruct"])
@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=["one-turn", "system", "two-turns"])
def test_training_examples_and_prompts_are_the_cookbooks_tokens(name, conversation, llama3_tokenizer, qwen3_tokenizer):
    tokenizer = qwen3_tokenizer if name.startswith("qwen3") else llama3_tokenizer
    tokens, mask, prompt = ours(tokenizer, name, conversation)
    their_tokens, their_weights, their_prompt = theirs(tokenizer, name, conversation)
    assert tokens == their_tokens, (tokenizer.decode(tokens), tokenizer.decode(their_tokens))
    assert mask == their_weights
    assert prompt == their_prompt, (tokenizer.decode(prompt), tokenizer.decode(their_prompt))
    assert sum(mask) > 0


ADD = {"name": "add", "description": "Add two numbers.",
       "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                      "required": ["a", "b"]}}


@pytest.mark.parametrize("name", ["qwen3", "qwen3_instruct"])
@pytest.mark.parametrize("system", [None, "Be exact."])
def test_tool_declarations_calls_and_results_are_the_cookbooks_tokens(name, system, qwen3_tokenizer):
    tokenizer = qwen3_tokenizer
    call = {"name": "add", "arguments": {"a": 2, "b": 3}}
    conversation = [{"role": "user", "content": "What is 2 + 3?"},
                    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]},
                    {"role": "tool", "content": "5", "name": "add"}]
    conversation = ([{"role": "system", "content": system}] if system else []) + conversation
    use_renderer(tokenizer, name, "test/model")
    text = tokenizer.apply_chat_template(conversation, tools=[{"type": "function", "function": ADD}],
                                         add_generation_prompt=True, tokenize=False)
    renderer = cookbook.get_renderer(name, tokenizer)
    messages = [dict(m) for m in conversation if m["role"] != "system"]
    messages[1]["tool_calls"] = [cookbook.ToolCall(function=cookbook.ToolCall.FunctionBody(
        name="add", arguments=json.dumps(call["arguments"])))]
    prefix = renderer.create_conversation_prefix_with_tools([ADD], system or "")
    expected = renderer.build_generation_prompt(prefix + messages).to_ints()
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == expected, (text, tokenizer.decode(expected))


@pytest.mark.parametrize(
    ("model", "renderer"),
    [("meta-llama/Llama-3.1-8B-Instruct", "llama3"), ("meta-llama/Llama-3.2-1B", "role_colon"),
     ("Qwen/Qwen3-8B", "qwen3"), ("Qwen/Qwen3-30B-A3B-Instruct-2507", "qwen3_instruct"),
     ("Qwen/Qwen3-8B-Base", "role_colon"), ("SmolLM2-135M-Instruct", "tokenizer")],
)
def test_the_default_renderer_is_the_cookbooks_recommendation(model, renderer):
    from tinker_cookbook.model_info import get_recommended_renderer_name

    assert recommended_renderer(model) == renderer
    if renderer != "tokenizer":
        assert get_recommended_renderer_name(model) == renderer


def test_a_renderer_whose_end_of_turn_the_tokenizer_lacks_is_refused(tokenizer):
    from inspect_tinker.errors import UsageError

    with pytest.raises(UsageError, match=r"renderer 'llama3' ends turns with <\|eot_id\|>, which the tokenizer"):
        use_renderer(tokenizer, "llama3", "SmolLM2-135M-Instruct")
