"""The `tinker` model provider against the fake Tinker service (tests/fake_tinker.py, the SDK's real types).

What is asserted is what reaches the service (the rendered prompt tokens, stop tokens,
sampling parameters, number of samples) and what the provider makes of the SDK's answers
(text, stop reason, tool calls, log-probabilities, token counts).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
import torch
from inspect_ai import Task, eval as inspect_eval
from inspect_ai._util.error import PrerequisiteError
from inspect_ai.dataset import Sample
from inspect_ai.model import (
    ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser, GenerateConfig, get_model,
)
from inspect_ai.scorer import includes
from inspect_ai.solver import generate, use_tools
from inspect_ai.tool import ToolCall, ToolCallError, tool
from tinker import types

from inspect_commands import inspect_cli

from inspect_tinker.data.renderers import use_renderer
from inspect_tinker.provider.messages import parse_tool_calls, template_messages
from inspect_tinker.provider.open_model import ProviderArgs
from inspect_tinker.provider.open_model import choose_backend

REPO = Path(__file__).resolve().parents[2]
CHAT_MODEL = "test-org/tiny-chat"  # no cookbook family: renders with the tokenizer's own template


def tinker_model(tiny_model_dir, name=CHAT_MODEL, **model_args):
    return get_model(f"tinker/{name}", tokenizer=str(tiny_model_dir), memoize=False, **model_args)


def ask(model, *messages, **config):
    return asyncio.run(model.generate(list(messages), config=GenerateConfig(**config)))


def text_tokens(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_the_prompt_is_the_rendered_conversation_and_every_sampling_setting_is_sent(fake, tiny_model_dir, tokenizer):
    model = tinker_model(tiny_model_dir)
    ask(model, ChatMessageUser(content="What is the capital of Valdoria?"), max_tokens=7, temperature=0.5,
        top_p=0.9, top_k=20, seed=3, num_choices=2, system_message="Answer briefly.")
    [(prompt, num_samples, params)] = fake.calls("sample")
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of Valdoria?"}]
    assert prompt == text_tokens(tokenizer, tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    assert num_samples == 2
    # The end of turn of SmolLM2's template (<|im_end|>, also its EOS) is the stop token.
    assert params == types.SamplingParams(max_tokens=7, temperature=0.5, top_p=0.9, top_k=20, seed=3,
                                          stop=[tokenizer.convert_tokens_to_ids("<|im_end|>")])
    assert fake.calls("create_sampling_client") == [(None, CHAT_MODEL)]


def test_no_temperature_means_greedy_and_no_max_tokens_means_inspects_default(fake, tiny_model_dir):
    ask(tinker_model(tiny_model_dir), ChatMessageUser(content="Hi"))
    [(_, _, params)] = fake.calls("sample")
    assert (params.temperature, params.max_tokens, params.top_p, params.top_k, params.seed) == (0.0, 2048, 1.0, -1, None)


def test_stop_reason_usage_and_text_come_from_the_sampled_tokens(fake, tiny_model_dir, tokenizer):
    model = tinker_model(tiny_model_dir)
    answer = text_tokens(tokenizer, "Mirenholt.")
    rambling = answer + text_tokens(tokenizer, " And so on, and so forth, for ever")
    fake.scripted = [answer + [tokenizer.eos_token_id], rambling]
    ended = ask(model, ChatMessageUser(content="Capital?"), max_tokens=len(answer) + 3)
    [(prompt, _, _)] = fake.calls("sample")
    assert ended.completion == "Mirenholt." and ended.stop_reason == "stop"
    assert (ended.usage.input_tokens, ended.usage.output_tokens) == (len(prompt), len(answer) + 1)
    cut = ask(model, ChatMessageUser(content="Capital?"), max_tokens=len(answer) + 3)
    assert cut.stop_reason == "max_tokens" and cut.completion == tokenizer.decode(rambling[: len(answer) + 3]).strip()
    assert cut.usage.output_tokens == len(answer) + 3


def test_stop_seqs_cut_the_text_and_count_as_a_stop(fake, tiny_model_dir, tokenizer):
    fake.scripted = [text_tokens(tokenizer, "Mirenholt.\n\nQuestion: and the currency")]
    out = ask(tinker_model(tiny_model_dir), ChatMessageUser(content="Capital?"), max_tokens=40, stop_seqs=["\n\nQuestion:"])
    assert out.completion == "Mirenholt." and out.stop_reason == "stop"


def test_logprobs_and_top_logprobs_are_the_services(fake, tiny_model_dir, tokenizer):
    answer = text_tokens(tokenizer, "Mirenholt") + [tokenizer.eos_token_id]
    fake.scripted = [answer]
    out = ask(tinker_model(tiny_model_dir), ChatMessageUser(content="Capital?"), logprobs=True, top_logprobs=3)
    [sent] = fake.answers["sample"][0].sequences
    content = out.choices[0].logprobs.content
    assert [c.logprob for c in content] == pytest.approx(sent.logprobs)
    assert [c.token for c in content] == [tokenizer.decode([t]) for t in answer]
    # The best alternative is at least as likely as the token sampled (float32 rounding aside).
    assert all(len(c.top_logprobs) == 3 and c.top_logprobs[0].logprob >= c.logprob - 1e-5 for c in content)


@tool
def add():
    async def execute(a: int, b: int):
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        """
        return str(a + b)

    return execute


def test_a_tool_calling_task_runs_to_completion_through_the_provider(fake, tiny_model_dir, tokenizer, tmp_path):
    # qwen3_instruct declares the tools and writes calls and results in Qwen's format.
    model = tinker_model(tiny_model_dir, renderer="qwen3_instruct")
    call = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    fake.scripted = [text_tokens(tokenizer, call) + [end], text_tokens(tokenizer, "2 + 3 is 5.") + [end]]
    task = Task(dataset=[Sample(input="What is 2 + 3? Use the tool.", target="5")], solver=[use_tools(add()), generate()],
                scorer=includes())
    [log] = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    [sample] = log.samples
    assert sample.output.completion == "2 + 3 is 5." and sample.scores["includes"].value == "C"
    [tool_message] = [m for m in sample.messages if m.role == "tool"]
    assert tool_message.function == "add" and tool_message.text == "5"
    first, second = [tokenizer.decode(prompt) for prompt, _, _ in fake.calls("sample")]
    assert '"name": "add", "description": "Add two numbers."' in first.split("<tools>\n", 1)[1]
    # The second request shows the model its own call and the tool's answer.
    assert second.endswith(f"{call}<|im_end|>\n<|im_start|>user\n<tool_response>\n5\n</tool_response><|im_end|>\n"
                           "<|im_start|>assistant\n")


@pytest.mark.parametrize(
    ("reply", "error"),
    [('<tool_call>{"name": "add", "arguments": {"a": 2,</tool_call>', "invalid JSON in <tool_call>"),
     ('<tool_call>{"tool": "add"}</tool_call>', '<tool_call> needs {"name": "<tool>", "arguments": {...}}'),
     # Qwen3's Hermes JSON names them "arguments"; the cookbook's parser refuses "parameters" too.
     ('<tool_call>{"name": "add", "parameters": {"a": 2, "b": 3}}</tool_call>', '<tool_call> needs {"name"'),
     ('Let me add. <tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}', "<tool_call> is not closed"),
     ("<tool_call><function=add><parameter=a>2</parameter>oops</function></tool_call>", "<tool_call> needs <function=")],
)
def test_a_malformed_tool_call_is_a_parse_error_and_stays_in_the_text_as_written(fake, tiny_model_dir, tokenizer, reply, error):
    fake.scripted = [text_tokens(tokenizer, reply) + [tokenizer.eos_token_id]]
    model = tinker_model(tiny_model_dir)
    out = asyncio.run(model.generate([ChatMessageUser(content="Add 2 and 3.")], tools=[add()]))
    [call] = out.message.tool_calls
    assert call.parse_error.startswith(error) and out.stop_reason == "tool_calls"
    assert out.message.text == reply


@pytest.mark.parametrize(
    "reply",
    ['<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>',
     "<tool_call>\n<function=add>\n<parameter=a>\n2\n</parameter>\n<parameter=b>\n3\n</parameter>\n</function>\n</tool_call>"],
    ids=["hermes-json", "qwen-xml"],
)
def test_qwens_json_and_xml_tool_calls_both_parse(reply):
    text, [call] = parse_tool_calls(f"I will add them.\n{reply}", 0)
    assert (text, call.function, call.arguments, call.parse_error) == ("I will add them.", "add", {"a": 2, "b": 3}, None)


def test_a_malformed_call_is_shown_back_as_written_and_tool_turns_keep_their_call_id(tokenizer):
    renderer = use_renderer(tokenizer, "qwen3_instruct", CHAT_MODEL)
    wrote = '<tool_call>{"name": "add", "parameters": {"a": 2}}</tool_call>'
    _, [bad] = parse_tool_calls(wrote, 0)
    good = ToolCall(id="call_1_0", function="add", arguments={"a": 2, "b": 3})
    messages = template_messages([
        ChatMessageUser(content="Add 2 and 3."), ChatMessageAssistant(content=wrote, tool_calls=[bad]),
        ChatMessageTool(content="", tool_call_id=bad.id, function="", error=ToolCallError("parsing", bad.parse_error)),
        ChatMessageAssistant(content="", tool_calls=[good]), ChatMessageTool(content="5", tool_call_id="call_1_0", function="add"),
    ], renderer)
    assert messages[1] == {"role": "assistant", "content": wrote}
    assert messages[3]["tool_calls"] == [{"type": "function", "id": "call_1_0", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]
    assert [m.get("tool_call_id") for m in messages if m["role"] == "tool"] == ["call_0_0", "call_1_0"]


def test_tools_a_renderer_cannot_show_are_warned_of_once_naming_a_renderer_that_can(fake, tiny_model_dir, caplog):
    # SmolLM2's own template has no tool format: the model would be asked without being told of the tools.
    # Inspect sets the root logger's level once, to the first eval's log level in this process
    # (an earlier test's may be "error"): the logger's own level makes the warning independent of it.
    caplog.set_level(logging.WARNING, logger="inspect_tinker.provider.model_api")
    model = tinker_model(tiny_model_dir)
    for _ in range(2):
        asyncio.run(model.generate([ChatMessageUser(content="Add 2 and 3.")], tools=[add()]))
    [warning] = [r.getMessage() for r in caplog.records if "cannot show tools" in r.getMessage()]
    assert "renderer tokenizer cannot show tools" in warning and "-M renderer=qwen3" in warning


def test_a_checkpoints_base_model_comes_from_the_service(fake, tiny_model_dir):
    fake.training_runs["run-7"] = CHAT_MODEL
    path = "tinker://run-7/sampler_weights/round-2"
    ask(tinker_model(tiny_model_dir, name=path), ChatMessageUser(content="Hi"))
    assert fake.calls("get_training_run_by_tinker_path") == [(path,)]
    assert fake.calls("create_sampling_client") == [(path, None)]


def test_base_model_given_the_service_is_not_asked(fake, tiny_model_dir):
    fake.training_runs["run-7"] = CHAT_MODEL
    path = "tinker://run-7/sampler_weights/round-2"
    ask(tinker_model(tiny_model_dir, model_path=path, base_model=CHAT_MODEL), ChatMessageUser(content="Hi"))
    assert fake.calls("get_training_run_by_tinker_path") == []
    assert fake.calls("create_sampling_client") == [(path, None)]


def test_a_checkpoint_the_service_does_not_have_is_one_clear_error_when_the_model_is_built(fake, tiny_model_dir):
    with pytest.raises(PrerequisiteError, match="the checkpoint tinker://gone/sampler_weights/round-1 was not found"):
        tinker_model(tiny_model_dir, name="tinker://gone/sampler_weights/round-1")
    assert fake.calls("sample") == []


def test_a_base_model_the_service_does_not_offer_is_one_message_when_the_model_is_built(fake, tiny_model_dir):
    fake.offered = [CHAT_MODEL]
    with pytest.raises(PrerequisiteError, match="'nosuchorg/nosuchmodel' is not offered by the Tinker service.*it offers: test-org/tiny-chat"):
        tinker_model(tiny_model_dir, name="nosuchorg/nosuchmodel")
    assert fake.calls("create_sampling_client") == []


@pytest.mark.parametrize(
    ("model_args", "message"),
    [({"renderer": "llama3"}, "renderer 'llama3' ends turns with <\\|eot_id\\|>, which the tokenizer .* does not have"),
     pytest.param({"device": "cuda"}, "device cuda: this PyTorch .* is built without CUDA",
                  marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine has the device")),
     ({"model_path": "DIR", "base_model": "NoSuchModel"}, "'NoSuchModel' is neither the bundled model")],
)
def test_a_local_models_mistake_is_one_message_when_the_model_is_built(tiny_model_dir, tmp_path, model_args, message):
    if model_args.get("model_path") == "DIR":  # an adapter whose base model does not exist
        (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 4}))
        model_args = {**model_args, "model_path": str(tmp_path)}
    with pytest.raises(PrerequisiteError, match=message):
        get_model(f"tinker/{tiny_model_dir}", memoize=False, backend="local", **model_args)


@pytest.mark.parametrize(
    ("name", "model_args", "message"),
    [
        ("tinker://run-1/weights/step-4", {}, "is a training state .*tinker://run-1/sampler_weights/step-4"),
        (CHAT_MODEL, {"renderer": "chatml"}, "-M renderer=chatml is unknown; the renderers are: llama3, qwen3"),
        (CHAT_MODEL, {"temprature": 0}, "unknown -M argument temprature"),
        (CHAT_MODEL, {"backend": "gpu"}, "-M backend=gpu: Input should be 'auto', 'local' or 'tinker'"),
        ("SmolLM2-135M-Instruct", {"model_path": "no/such/adapter"}, "is neither a PEFT adapter folder .*does not exist"),
        (CHAT_MODEL, {"batch_size": "abc"}, "-M batch_size=abc: Input should be a valid integer"),
        (CHAT_MODEL, {"batch_size": 0}, "-M batch_size=0: Input should be greater than or equal to 1"),
        (CHAT_MODEL, {"unreachable_timeout": -1}, "-M unreachable_timeout=-1: Input should be greater than 0"),
        (CHAT_MODEL, {"device": "tpu"}, "-M device=tpu: Input should be 'auto', 'cpu' or 'cuda'"),
        ("NoSuchModel", {"backend": "local"}, "'NoSuchModel' is neither the bundled model"),
    ],
)
def test_a_users_mistake_is_one_message_before_any_sample(fake, tiny_model_dir, name, model_args, message):
    with pytest.raises(PrerequisiteError, match=message):
        tinker_model(tiny_model_dir, name=name, **model_args)
    assert fake.calls("create_sampling_client") == []


@pytest.mark.parametrize(("key", "message"), [(None, "needs an API key"), ("sk-123", "TINKER_API_KEY is malformed")])
def test_a_missing_or_malformed_key_is_one_message(fake, tiny_model_dir, monkeypatch, key, message):
    if key is None:
        monkeypatch.delenv("TINKER_API_KEY")
    else:
        monkeypatch.setenv("TINKER_API_KEY", key)
    with pytest.raises(PrerequisiteError, match=message):
        tinker_model(tiny_model_dir)


@pytest.mark.parametrize(
    ("name", "model_path", "backend"),
    [("SmolLM2-135M-Instruct", None, "local"), ("meta-llama/Llama-3.1-8B-Instruct", None, "tinker"),
     ("tinker://run-1/sampler_weights/x", None, "tinker"), ("SmolLM2-135M-Instruct", "ADAPTER", "local"),
     ("Qwen/Qwen3-8B", "tinker://run-1/sampler_weights/x", "tinker"), ("MODEL_DIR", None, "local")],
)
def test_backend_auto_is_decided_by_the_model_string_alone(fake, tiny_model_dir, tmp_path, name, model_path, backend):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 4}))
    name = str(tiny_model_dir) if name == "MODEL_DIR" else name
    model_path = str(adapter) if model_path == "ADAPTER" else model_path
    args = ProviderArgs(model_path=model_path, device="cpu", batch_size=4)
    assert choose_backend(name, args).backend == backend


def test_the_loops_logs_say_which_backend_model_checkpoint_and_renderer_answered(write_run_config, tmp_path):
    from inspect_ai.log import read_eval_log

    from inspect_tinker.config import load_config
    from inspect_tinker.loop.eval_tasks import base_model_judges, build_tasks
    from inspect_tinker.evals.runner import evaluate
    from local_backends import local_backend

    config = load_config(write_run_config())
    backend = local_backend(config.base_model)
    result = evaluate(backend, config.backend, build_tasks(config), base_model_judges(config), config.eval_batch_size,
                      tmp_path / "logs", model_path="runs/test/rounds/1/adapter")
    log = read_eval_log(result.tasks[0].log_path)
    assert log.eval.model == f"tinker/{config.base_model}"
    assert log.eval.model_args == {"backend": "local", "base_model": config.base_model,
                                   "model_path": "runs/test/rounds/1/adapter", "renderer": "tokenizer"}


def test_a_seeded_answer_is_the_same_however_many_requests_are_batched_with_it(tiny_model_dir):
    model = get_model(f"tinker/{tiny_model_dir}", memoize=False, backend="local", batch_size=4)
    questions = [f"What is question {i}?" for i in range(4)]
    config = GenerateConfig(temperature=1.0, seed=7, max_tokens=8)

    async def together():  # as at --max-connections 4: one batch
        return await asyncio.gather(*(model.generate([ChatMessageUser(content=q)], config=config) for q in questions))

    batched = [out.completion for out in asyncio.run(together())]
    alone = [ask(model, ChatMessageUser(content=q), temperature=1.0, seed=7, max_tokens=8).completion for q in questions]
    assert batched == alone and len(set(batched)) > 1


def test_inspect_eval_with_a_model_that_does_not_exist_is_one_line_and_a_failed_exit(tmp_path, offline_tiktoken):
    done = inspect_cli("eval", "tasks/demo_qa.py", "--model", "tinker/NoSuchModel", "-M", "backend=local",
                       "--log-dir", str(tmp_path), cwd=REPO, env=offline_tiktoken)
    assert done.returncode != 0 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert "tinker/NoSuchModel: base_model 'NoSuchModel' is neither the bundled model" in done.stdout + done.stderr


@pytest.mark.parametrize(("enable_thinking", "prompt_end"), [(False, "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
                                                            (True, "<|im_start|>assistant\n")])
def test_jammastergirish_inspect_tinkers_enable_thinking_means_the_same_here(fake, tiny_model_dir, tokenizer,
                                                                            enable_thinking, prompt_end):
    ask(tinker_model(tiny_model_dir, name="Qwen/Qwen3-8B", enable_thinking=enable_thinking), ChatMessageUser(content="Hi"))
    [(prompt, _, _)] = fake.calls("sample")
    assert tokenizer.decode(prompt).endswith(f"Hi<|im_end|>\n{prompt_end}")
