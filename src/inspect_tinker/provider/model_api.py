"""The `tinker` Inspect model provider: any Inspect task against a Tinker model, on the service or offline.

    inspect eval <task> --model tinker/meta-llama/Llama-3.1-8B-Instruct
    inspect eval <task> --model tinker/tinker://<run>/sampler_weights/round-2
    inspect eval <task> --model tinker/SmolLM2-135M-Instruct -M backend=local [-M model_path=<adapter>]

One model API for both backends and for the loop: a backend's Sampler answers token ids with
token ids (provider/backend.py); everything between Inspect's messages and those token ids is
done here, once: render the messages (and tools) with the renderer, merge the request's
stop_seqs with the renderer's end of turn, decode, cut stop strings, parse tool calls, report
the real stop reason, log-probabilities and token counts.

`-M` arguments (all recorded in the log's model_args; types and bounds in open_model.ProviderArgs):
`backend` (`auto`, `local`, `tinker`), `base_model`, `model_path`, `renderer`, `tokenizer` (a
local tokenizer folder for the tinker backend), `unreachable_timeout` (tinker: seconds the
service may go without answering before a sample fails), `device` and `batch_size` (local),
`enable_thinking` (jammastergirish/inspect-tinker's). What `auto` picks is in `choose_backend`.
The model is opened when the provider is built, so every mistake is one message before any sample.
The loop builds its Model over the backend it trains with (`backend_model`), not by name.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from inspect_ai._util.error import PrerequisiteError
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    Logprobs,
    Model,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    TopLogprob,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolFunction, ToolInfo

from inspect_tinker.data.renderers import RENDERERS, Renderer
from inspect_tinker.errors import UsageError
from inspect_tinker.provider.backend import SERVICE_MAX_CONNECTIONS, Backend, SampledSequence, Sampler, SamplingParams
from inspect_tinker.provider.messages import parse_tool_calls, template_messages, tool_schemas
from inspect_tinker.provider.open_model import OpenedModel, choose_backend, open_model, provider_args
from inspect_tinker.provider.settings import UNREACHABLE_TIMEOUT_SECONDS

logger = logging.getLogger(__name__)

PROVIDER = "tinker"
# A task that sets no max_tokens gets Inspect's own default (inspect_ai._util.constants): the
# SDK needs a number, and a smaller one would cut answers short without saying so.
DEFAULT_MAX_TOKENS = 2048
# Inspect's marker for the throw-away instance it builds only to look model information up.
_MODEL_INFO_LOOKUP = "__model_info_lookup__"


class TinkerAPI(ModelAPI):
    """Inspect's ModelAPI over a backend's Sampler (see the module docstring for `-M` arguments)."""

    def __init__(
        self, model_name: str, base_url: str | None = None, api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(), *, opened: OpenedModel | None = None, **model_args: Any,
    ):
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        self._opened = opened
        self._warned_tools = False
        if opened is not None or api_key == _MODEL_INFO_LOOKUP:  # kept cheap: nothing to check or open
            self.args = None
            return
        # Opened here, before any sample runs: a wrong model name, a renderer the tokenizer
        # cannot use, a device this machine lacks or a checkpoint the service does not have is
        # one message and a failed `inspect eval`, not a traceback on every sample.
        try:
            self.args = choose_backend(model_name, provider_args(model_args))
            self._opened = open_model(model_name, self.args, base_url, api_key)
            self._describe()
        except UsageError as err:
            raise PrerequisiteError(f"tinker/{model_name}: {err}") from None

    def _describe(self) -> None:
        a = self.args
        what = f"{a.model_path} (base {a.base_model or self.model_name})" if a.model_path else self.model_name
        where = "the Tinker service" if a.backend == "tinker" else "this machine (PyTorch)"
        print(f"tinker provider: backend {a.backend}: {what} on {where}, renderer {self._opened.renderer.name}",
              file=sys.stderr)

    def max_connections(self) -> int:
        if self._opened is not None:
            return self._opened.sampler.max_connections()
        return SERVICE_MAX_CONNECTIONS  # the model-information lookup instance: never samples

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig,
    ) -> ModelOutput:
        opened = self._opened
        tokenizer, renderer = opened.tokenizer, opened.renderer
        offered = _offered_tools(tools, tool_choice)
        if offered and not renderer.tools and not self._warned_tools:
            self._warned_tools = True
            logger.warning(_no_tools_warning(self.model_name, renderer, tokenizer))
        # `enable_thinking` also reaches a model's own template (Qwen3.5's reads it), as in
        # jammastergirish/inspect-tinker; other templates ignore it.
        thinking = {} if self.args is None or self.args.enable_thinking is None else {"enable_thinking": self.args.enable_thinking}
        text = tokenizer.apply_chat_template(
            template_messages(input, renderer), tools=tool_schemas(offered) or None,
            add_generation_prompt=True, tokenize=False, **thinking,
        )
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        params = sampling_params(config, renderer)
        sequences = await opened.sampler.sample_async(prompt, config.num_choices or 1, params)
        choices = [self._choice(s, i, params, tokenizer, bool(offered)) for i, s in enumerate(sequences)]
        output_tokens = sum(len(s.tokens) for s in sequences)
        return ModelOutput(
            model=self.model_name, choices=choices,
            usage=ModelUsage(input_tokens=len(prompt), output_tokens=output_tokens, total_tokens=len(prompt) + output_tokens),
            metadata=sampled_tokens(prompt, sequences) if params.logprobs else None,
        )

    def _choice(self, sequence: SampledSequence, index: int, params: SamplingParams, tokenizer, tools: bool) -> ChatCompletionChoice:
        tokens = sequence.tokens
        if tokens and tokens[-1] in params.stop_tokens:  # the end-of-turn token is not part of the answer
            tokens = tokens[:-1]
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        stop_reason = "stop" if sequence.stop_reason == "stop" else "max_tokens"
        cuts = [text.index(s) for s in params.stop_strings if s in text]
        if cuts:
            text, stop_reason = text[: min(cuts)], "stop"
        tool_calls = []
        if tools:
            text, tool_calls = parse_tool_calls(text, index)
            stop_reason = "tool_calls" if tool_calls else stop_reason
        return ChatCompletionChoice(
            message=ChatMessageAssistant(content=text.strip(), tool_calls=tool_calls or None, model=self.model_name, source="generate"),
            stop_reason=stop_reason,
            logprobs=_logprobs(sequence, tokenizer) if params.logprobs else None,
        )


SAMPLED_TOKENS = "sampled_tokens"


def sampled_tokens(prompt: list[int], sequences: list[SampledSequence]) -> dict:
    """The output metadata that carries what was sampled, token for token, for an RL step to train
    on: the prompt's token ids and, per choice, the sampled token ids (the end-of-turn token
    included) and their sampling logprobs. The text cannot stand in for them: tokenizing it again
    gives other tokens (tokenization is not invertible), and the importance ratio would compare
    different tokens. Only an output whose request asked for logprobs carries it."""
    return {SAMPLED_TOKENS: {"prompt_tokens": prompt,
                             "choices": [{"tokens": s.tokens, "logprobs": s.logprobs} for s in sequences]}}


def _no_tools_warning(model_name: str, renderer: Renderer, tokenizer) -> str:
    """What to say, once per model, when a task offers tools the renderer cannot show."""
    able = [name for name, spec in RENDERERS.items() if spec.tools and spec.end_of_turn in tokenizer.get_vocab()]
    fix = (f"evaluate with a renderer that can: -M renderer={' or -M renderer='.join(able)}" if able else
           "none of the renderers with a tool format (qwen3, qwen3_instruct) fits this tokenizer; use a model that has one")
    return (f"tinker/{model_name}: renderer {renderer.name} cannot show tools, so the model is not told of the "
            f"task's tools (its tool calls are still parsed); {fix}.")


def sampling_params(config: GenerateConfig, renderer: Renderer) -> SamplingParams:
    """What a GenerateConfig asks of the sampler, with the renderer's end of turn added to its stops.

    No temperature means greedy (0): an evaluation should be repeatable unless it asks otherwise.
    """
    return SamplingParams(
        max_tokens=config.max_tokens or DEFAULT_MAX_TOKENS,
        temperature=config.temperature if config.temperature is not None else 0.0,
        top_p=config.top_p if config.top_p is not None else 1.0,
        top_k=config.top_k if config.top_k is not None else -1,
        seed=config.seed,
        stop_tokens=renderer.stop_tokens,
        stop_strings=tuple(dict.fromkeys([*renderer.stop_strings, *(config.stop_seqs or [])])),
        logprobs=bool(config.logprobs or config.top_logprobs),
        top_logprobs=config.top_logprobs or 0,
    )


def _offered_tools(tools: list[ToolInfo], tool_choice: ToolChoice) -> list[ToolInfo]:
    """The tools the model is shown: none for `none`, only the named one for a ToolFunction."""
    if tool_choice == "none":
        return []
    if isinstance(tool_choice, ToolFunction):
        return [t for t in tools if t.name == tool_choice.name]
    return tools


def _logprobs(sequence: SampledSequence, tokenizer) -> Logprobs | None:
    if sequence.logprobs is None:
        return None
    top = sequence.top_logprobs or [None] * len(sequence.logprobs)
    return Logprobs(content=[
        Logprob(
            token=tokenizer.decode([token]), logprob=logprob,
            top_logprobs=[TopLogprob(token=tokenizer.decode([t]), logprob=lp) for t, lp in alternatives]
            if alternatives else None,
        )
        for token, logprob, alternatives in zip(sequence.tokens, sequence.logprobs, top)
    ])


@modelapi(name=PROVIDER)
def tinker_provider() -> type[ModelAPI]:
    return TinkerAPI


def backend_model(
    backend: Backend, sampler: Sampler, *, backend_name: str, model_path: str | None, config: GenerateConfig,
) -> Model:
    """An Inspect Model named `tinker/<base model>` that samples from `sampler`, one of `backend`'s.

    Its model_args (in every log) say what answers: the backend, the base model, the
    checkpoint (`model_path`; None: the weights in memory at the round's start), the renderer.
    """
    opened = OpenedModel(sampler=sampler, tokenizer=backend.tokenizer, renderer=backend.renderer)
    api = tinker_provider(model_name=backend.info.base_model, config=config, opened=opened)
    described = {"backend": backend_name, "base_model": backend.info.base_model, "model_path": model_path,
                 "renderer": backend.renderer.name}
    return Model(api=api, config=config, model_args=described)
