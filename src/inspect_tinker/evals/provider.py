"""An Inspect AI model provider that answers with an engine's in-memory weights.

Evaluation never reloads the model: Inspect calls `generate` once per sample,
concurrently; the provider gathers the prompts that arrive together and answers them in
one batched `engine.sample` call in a worker thread. One engine can be registered under
several names, with or without its adapter (the base model as a judge); all requests to
one engine go through one queue, so the engine only ever runs one batch at a time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessageAssistant,
    GenerateConfig,
    Model,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    get_model,
    modelapi,
)

from inspect_tinker.engines.base import Completion, TrainingEngine

PROVIDER = "inspect-tinker"
# Inspect starts the next samples one by one as finished ones are scored and logged, so
# requests trickle in after each batch. A batch waits while they keep coming (each within
# _GATHER_SECONDS of the last) and is not full, but never longer than _MAX_GATHER_SECONDS:
# small next to the seconds a batch of generation takes, and a split batch costs nearly a
# whole batch more (generation at small batch sizes is bound by per-step overhead).
_GATHER_SECONDS = 0.05
_MAX_GATHER_SECONDS = 0.5


@dataclass
class _Registration:
    engine: TrainingEngine
    batch_size: int
    with_adapter: bool


# Process-wide: Inspect builds providers from a model name, so the engine is found by name.
_ENGINES: dict[str, _Registration] = {}


def register_engine(engine: TrainingEngine, name: str, batch_size: int, *, with_adapter: bool = True) -> None:
    """Make `inspect_tinker/<name>` answer with `engine` (its adapter switched off if `with_adapter` is False).

    Inspect memoizes models by name, but the provider looks its engine up on every call,
    so a name always answers with what is registered under it now.
    """
    _ENGINES[name] = _Registration(engine, batch_size, with_adapter)


def engine_model(engine: TrainingEngine, name: str, batch_size: int) -> Model:
    """An Inspect Model named `inspect_tinker/<name>` that generates with `engine` and its adapter."""
    register_engine(engine, name, batch_size)
    return get_model(f"{PROVIDER}/{name}", memoize=False)


def release_engine_model(name: str) -> None:
    registration = _ENGINES.pop(name, None)
    if registration is not None and all(r.engine is not registration.engine for r in _ENGINES.values()):
        for key in [k for k in _BATCHERS if k[0] == id(registration.engine)]:
            del _BATCHERS[key]


class _Batcher:
    """Collects concurrent requests to one engine with equal settings and runs them as one batch."""

    def __init__(self, registration: _Registration):
        self.registration = registration
        self.pending: list[tuple[list[int], tuple, asyncio.Future]] = []
        self.worker: asyncio.Task | None = None

    async def submit(self, prompt: list[int], settings: tuple) -> Completion:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((prompt, settings, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    async def _gather(self) -> None:
        """Wait until a full batch is pending, or requests stop arriving, or the wait is too long."""
        loop = asyncio.get_running_loop()
        deadline, seen = loop.time() + _MAX_GATHER_SECONDS, -1
        while seen != len(self.pending) and len(self.pending) < self.registration.batch_size and loop.time() < deadline:
            seen = len(self.pending)
            await asyncio.sleep(_GATHER_SECONDS)

    async def _drain(self) -> None:
        while self.pending:
            await self._gather()
            settings = self.pending[0][1]
            group = [p for p in self.pending if p[1] == settings][: self.registration.batch_size]
            for item in group:
                self.pending.remove(item)
            max_tokens, temperature, stop, with_adapter = settings
            try:
                completions = await asyncio.to_thread(
                    self.registration.engine.sample, [p[0] for p in group], max_tokens, temperature, list(stop),
                    with_adapter=with_adapter,
                )
            except Exception as err:  # surfaced on each waiting sample
                for _, _, future in group:
                    future.set_exception(err)
                continue
            for (_, _, future), completion in zip(group, completions):
                future.set_result(completion)


# One batcher per engine and event loop (each Inspect eval runs its own loop).
_BATCHERS: dict[tuple[int, asyncio.AbstractEventLoop], _Batcher] = {}


class EngineModelAPI(ModelAPI):
    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any):
        # Kept cheap: Inspect also builds a provider only to look model info up.
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)

    def _registration(self) -> _Registration:
        try:
            return _ENGINES[self.model_name]
        except KeyError:
            raise RuntimeError(f"no engine registered as {self.model_name!r}; use engine_model()") from None

    def max_connections(self) -> int:
        return self._registration().batch_size if self.model_name in _ENGINES else 1

    async def generate(self, input, tools, tool_choice, config: GenerateConfig) -> ModelOutput:
        registration = self._registration()
        tokenizer = registration.engine.tokenizer
        messages = [{"role": m.role, "content": m.text} for m in input]
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        prompt = list(rendered["input_ids"] if hasattr(rendered, "keys") else rendered)
        settings = (
            config.max_tokens or 32, config.temperature or 0.0, tuple(config.stop_seqs or ()), registration.with_adapter
        )
        key = (id(registration.engine), asyncio.get_running_loop())
        batcher = _BATCHERS.setdefault(key, _Batcher(registration))
        completion = await batcher.submit(prompt, settings)
        return ModelOutput(
            model=self.model_name,
            choices=[
                ChatCompletionChoice(
                    message=ChatMessageAssistant(content=completion.text, model=self.model_name, source="generate"),
                    stop_reason="stop" if completion.stop_reason == "stop" else "max_tokens",
                )
            ],
            usage=ModelUsage(
                input_tokens=len(prompt),
                output_tokens=completion.n_tokens,
                total_tokens=len(prompt) + completion.n_tokens,
            ),
        )


@modelapi(name=PROVIDER)
def _inspect_tinker_provider() -> type[ModelAPI]:
    return EngineModelAPI
