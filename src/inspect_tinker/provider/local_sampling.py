"""Sampling with a model held in this process: batched generation and the batcher that feeds it.

Inspect calls the provider once per sample, concurrently; a `LocalSampler` gathers the
prompts that arrive together and generates them as one left-padded batch in a worker thread,
so the model runs one batch at a time and the answers are those of sequential greedy
generation (left padding with an attention mask leaves each row's result unchanged).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from contextlib import nullcontext

import torch
from transformers import GenerationConfig

from inspect_tinker.provider.backend import SampledSequence, SamplingParams

# (prompts, num_samples, params) -> per prompt, its sampled sequences
GenerateBatch = Callable[[list[list[int]], int, SamplingParams], list[list[SampledSequence]]]

# Inspect starts the next samples one by one as finished ones are scored and logged, so
# requests trickle in after each batch. A batch waits while they keep coming (each within
# _GATHER_SECONDS of the last) and is not full, but never longer than _MAX_GATHER_SECONDS:
# small next to the seconds a batch of generation takes, and a split batch costs nearly a
# whole batch more (generation at small batch sizes is bound by per-step overhead).
_GATHER_SECONDS = 0.05
_MAX_GATHER_SECONDS = 0.5


@torch.no_grad()
def generate_batch(
    model, tokenizer, device: torch.device, prompts: list[list[int]], num_samples: int, params: SamplingParams,
    *, autocast=nullcontext(), synced_gpus: bool = False,
) -> list[list[SampledSequence]]:
    """Sample `num_samples` continuations of every prompt in one left-padded batch.

    Greedy when `params.temperature` is 0. A seeded request samples from its own seeded
    generator state, leaving the process's random state (which training uses) untouched.
    The rows of a batch draw from one random stream, so a seeded prompt is sampled alone:
    its answer is then the same however many requests arrived with it (`--max-connections`).
    Sharded (`synced_gpus`), the processes must run the same number of generations, so there
    seeded prompts stay batched and their answers depend on the batch.
    """
    seeded = params.seed is not None and params.temperature > 0
    if seeded and len(prompts) > 1 and not synced_gpus:
        return [generate_batch(model, tokenizer, device, [p], num_samples, params, autocast=autocast)[0] for p in prompts]
    model.eval()
    pad = tokenizer.pad_token_id
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, p in enumerate(prompts):
        input_ids[row, width - len(p):] = torch.tensor(p)
        attention[row, width - len(p):] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    sampled = params.temperature > 0
    generation = GenerationConfig(
        max_new_tokens=params.max_tokens,
        do_sample=sampled,
        temperature=params.temperature if sampled else None,
        top_p=params.top_p if sampled and params.top_p < 1.0 else None,
        top_k=params.top_k if sampled and params.top_k > 0 else None,
        pad_token_id=pad,
        eos_token_id=list(params.stop_tokens) or None,
        stop_strings=list(params.stop_strings) or None,
        return_dict_in_generate=True,
        output_logits=params.logprobs,
    )
    rng = torch.random.fork_rng(devices=[device] if device.type == "cuda" else []) if seeded else nullcontext()
    with rng, autocast:
        # Sharded, every process must run as many forward passes as the others: no shared prefill there.
        cache = _shared_prefill(model, input_ids, attention, num_samples) if num_samples > 1 and not synced_gpus else None
        if num_samples > 1:
            input_ids, attention = input_ids.repeat_interleave(num_samples, 0), attention.repeat_interleave(num_samples, 0)
        if seeded:
            torch.manual_seed(params.seed)
        out = model.generate(
            input_ids=input_ids, attention_mask=attention, generation_config=generation, cache=cache,
            tokenizer=tokenizer if params.stop_strings else None, synced_gpus=synced_gpus,
        )
    new = out.sequences[:, width:].tolist()
    logprobs = (torch.stack(out.logits, dim=1).float().log_softmax(-1) if params.logprobs else None)
    sequences = []
    for row, tokens in enumerate(new):
        tokens, stop_reason = _ended(tokens, params, tokenizer)
        chosen = top = None
        if logprobs is not None:
            steps = logprobs[row, : len(tokens)]
            chosen = steps.gather(-1, torch.tensor(tokens, device=steps.device)[:, None])[:, 0].tolist()
            if params.top_logprobs:
                values, ids = steps.topk(params.top_logprobs, dim=-1)
                top = [list(zip(i, v)) for i, v in zip(ids.tolist(), values.tolist())]
        sequences.append(SampledSequence(tokens=tokens, stop_reason=stop_reason, logprobs=chosen, top_logprobs=top))
    return [sequences[i * num_samples:(i + 1) * num_samples] for i in range(len(prompts))]


def _shared_prefill(model, input_ids: torch.Tensor, attention: torch.Tensor, num_samples: int):
    """The KV cache of every prompt but its last token, computed once per prompt and repeated
    for its `num_samples` rows; None when a prompt is a single token (nothing to share).

    `generate` given it runs only the last prompt token and the new ones, so `num_samples`
    completions of a prompt cost one prefill, not `num_samples`: the rows of a group are the
    same prompt, and their caches would be the same numbers. The last token is left to
    `generate` so that it computes the first new token's logits as usual. The positions are
    those `generate` gives a left-padded batch (the count of real tokens before each one).
    """
    if input_ids.shape[1] < 2:
        return None
    mask = attention[:, :-1]
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    cache = model(input_ids=input_ids[:, :-1], attention_mask=mask, position_ids=positions, use_cache=True,
                  logits_to_keep=1).cache
    cache.batch_repeat_interleave(num_samples)
    return cache


def _ended(tokens: list[int], params: SamplingParams, tokenizer) -> tuple[list[int], str]:
    """A generated row cut where it ended: at its first stop token (kept), or at the token
    that completed a stop string; the rest is padding. "length" when neither came."""
    stops = set(params.stop_tokens)
    end = next((i for i, t in enumerate(tokens) if t in stops), None)
    if params.stop_strings:
        # Shortest prefix whose text holds a stop string; containing one stays true as the
        # prefix grows, so a binary search finds it in log2(len) decodes.
        def holds(n: int) -> bool:
            text = tokenizer.decode(tokens[:n], skip_special_tokens=True)
            return any(s in text for s in params.stop_strings)

        limit = end if end is not None else len(tokens)
        if holds(limit):
            low, high = 1, limit
            while low < high:
                mid = (low + high) // 2
                low, high = (low, mid) if holds(mid) else (mid + 1, high)
            return tokens[:low], "stop"
    if end is not None:
        return tokens[: end + 1], "stop"
    return tokens, "length"


class _Batcher:
    """Collects concurrent requests with equal settings and generates them as one batch."""

    def __init__(self, generate: GenerateBatch, batch_size: int):
        self.generate, self.batch_size = generate, batch_size
        self.pending: list[tuple[list[int], tuple[int, SamplingParams], asyncio.Future]] = []
        self.worker: asyncio.Task | None = None

    async def submit(self, prompt: list[int], num_samples: int, params: SamplingParams) -> list[SampledSequence]:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((prompt, (num_samples, params), future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    async def _gather(self) -> None:
        """Wait until a full batch is pending, or requests stop arriving, or the wait is too long."""
        loop = asyncio.get_running_loop()
        deadline, seen = loop.time() + _MAX_GATHER_SECONDS, -1
        while seen != len(self.pending) and len(self.pending) < self.batch_size and loop.time() < deadline:
            seen = len(self.pending)
            await asyncio.sleep(_GATHER_SECONDS)

    async def _drain(self) -> None:
        while self.pending:
            await self._gather()
            settings = self.pending[0][1]
            group = [p for p in self.pending if p[1] == settings][: self.batch_size]
            for item in group:
                self.pending.remove(item)
            num_samples, params = settings
            try:
                results = await asyncio.to_thread(self.generate, [p[0] for p in group], num_samples, params)
            except Exception as err:  # surfaced on each waiting sample
                for _, _, future in group:
                    future.set_exception(err)
                continue
            for (_, _, future), sequences in zip(group, results):
                future.set_result(sequences)


class LocalSampler:
    """A Sampler over a model in this process: concurrent requests become batches of `batch_size`."""

    def __init__(self, generate: GenerateBatch, batch_size: int):
        self.generate, self.batch_size = generate, batch_size
        # One batcher per event loop: each Inspect eval runs its own.
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher] = weakref.WeakKeyDictionary()

    async def sample_async(self, prompt: list[int], num_samples: int, params: SamplingParams) -> list[SampledSequence]:
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _Batcher(self.generate, self.batch_size)
        return await batcher.submit(prompt, num_samples, params)

    def max_connections(self) -> int:
        return self.batch_size
