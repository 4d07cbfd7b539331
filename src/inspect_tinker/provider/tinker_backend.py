"""The `tinker` backend: LoRA training and sampling on Thinking Machines' managed Tinker service.

The loop's primitives map onto the `tinker` SDK one to one:
- forward_backward: one `Datum` per example, inputs and targets pre-shifted, the example's
  weight (`example_weights`: the local backend's objective) on the assistant tokens being
  predicted and 0 elsewhere, with the `cross_entropy` loss;
  forward_backward_policy: one `Datum` per sampled completion with the sampling logprobs and
  the advantage on its tokens, with the `importance_sampling` or `ppo` loss (`to_policy_datum`);
  optim_step: `AdamParams` at the step's learning rate with the run's AdamW settings (betas,
  eps, decoupled weight decay, and `max_grad_norm` as `grad_clip_norm`, 0 = off in both);
  never the SDK's own defaults, which differ from ours (beta2 0.95, eps 1e-12, no clipping).
  forward_backward only submits its request; optim_step submits its own and then waits for
  both, so the service receives them together (the SDK's recommended pipelining: waiting
  in between would cost a service clock cycle per step).
- save_checkpoint: `save_state` (weights and optimizer) named by the optimizer step; the
  checkpoint folder keeps the returned tinker:// path. load_checkpoint: a new training client
  from that state, optimizer included.
- sampler: a SamplingClient on the current weights (`save_weights_and_get_sampling_client`,
  taken once per change of the weights), or on the base model (`create_sampling_client`);
  the provider keeps one request per sample in flight (up to Inspect's max_connections),
  each naming the renderer's end-of-turn tokens as its stop tokens.

Retries: the SDK already retries rate limits (429), timeouts, connection and server errors
(408, 409, 5xx) with exponential backoff, for every request and while polling results. We add
no retry layer of our own to the training requests: re-sending a training request is not safe (a forward_backward
whose answer was lost may already have accumulated its gradients, and the SDK refuses further
requests on a training client after a failure). The one request we do repeat is the creation
of a training run (create, or resume from a state) that the service refuses for lack of room:
HTTP 429, or a server's full table of LoRA adapters. Nothing was created, so asking again is
safe; the run waits with backoff for up to `tinker_capacity_timeout` seconds and says so once
(`create_training_client`), and several runs at once (`tune`'s workers) queue for room rather
than fail. A sample refused with 429 the SDK itself asks again for, without limit, so an
evaluation never falls back to an empty answer. A failure that outlasts the SDK's retries
ends the run with a clear message; every completed round's state is saved on the service and
its tinker:// path is in the run folder. One thing the SDK does not bound: while the service
refuses connections or never replies it retries for ever, so a server that has gone away
would hang a run, in training or in the middle of an evaluation. Every wait on a result,
training's and sampling's (`ResultWaiter`), therefore checks, once a result is slow, that
the service still answers, and gives up when it has not for `tinker_unreachable_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import tinker
from tinker import types
from tinker.lib.base_url import resolve_base_url

from inspect_tinker.data.render import TokenizedExample
from inspect_tinker.data.renderers import Renderer, use_renderer
from inspect_tinker.provider.backend import (
    SERVICE_MAX_CONNECTIONS, BackendInfo, PolicyDatum, PolicyLoss, PolicyStepMetrics, SampledSequence, SamplingParams,
    StepMetrics, example_weights,
)
from inspect_tinker.provider.policy_loss import clipped_count, per_token_loss
from inspect_tinker.provider.settings import AdamWSettings, TinkerBackendSettings
from inspect_tinker.errors import UsageError

CHECKPOINT_FILE = "tinker_checkpoint.json"  # in a round folder: the round's tinker:// state path
LOSS_FN = "cross_entropy"
# How long a result may take before each check that the service still answers. The check is
# one small GET; results that arrive sooner cost nothing.
REACHABILITY_CHECK_SECONDS = 5.0
# How long that GET may take to be answered: generous, since a loaded machine answers slowly;
# an outage is counted from the start of the first check that failed, so this does not
# lengthen it.
REACHABILITY_ANSWER_SECONDS = 30.0


# Waiting for room for a training run: the first pause, doubled after each refusal up to the last.
CAPACITY_RETRY_FIRST_SECONDS = 2.0
CAPACITY_RETRY_MAX_SECONDS = 60.0
# How a Tinker-compatible server (SkyRL) words its refusal when its adapter table is full
# (HTTP 400); the managed service answers 429 or queues the request itself.
ADAPTER_LIMIT_REFUSAL = "Maximum number of LoRA adapters"


class TinkerServiceError(RuntimeError):
    """The Tinker service failed a request, after the SDK's own retries."""


def check_api_key() -> None:
    """Raise UsageError when no well-formed Tinker API key is configured. Needs no network.

    The key comes from TINKER_API_KEY; like the SDK, we also accept its other credential
    sources (`tinker auth login`, TINKER_CREDENTIAL_CMD) when the variable is unset.
    """
    if os.environ.get("TINKER_API_KEY"):
        # The SDK's own check: None when the key it would send is malformed.
        if tinker.auth.get_tinker_token() is None:
            raise UsageError(
                "TINKER_API_KEY is malformed: a Tinker API key starts with 'tml-' (or is a JWT). "
                "Copy it again from the Tinker console, without quotes or spaces."
            )
    elif not tinker.auth.tinker_has_credentials():
        raise UsageError(
            "backend: tinker needs an API key: set the environment variable TINKER_API_KEY=tml-... "
            "(create a key in the Tinker console)."
        )


def check_sampler_path(path: str) -> None:
    """Raise UsageError unless `path` is a tinker:// checkpoint the service can sample from.

    A training state (`tinker://<run>/weights/<name>`, from save_state) holds optimizer state
    for resuming; sampling needs the sampler weights saved beside it (save_weights_for_sampler).
    """
    try:
        parsed = types.ParsedCheckpointTinkerPath.from_tinker_path(path)
    except ValueError:
        raise UsageError(
            f"{path} is not a Tinker checkpoint path; they look like tinker://<run>/sampler_weights/<name>."
        ) from None
    if parsed.checkpoint_type == "training":
        sampler = path.replace("/weights/", "/sampler_weights/", 1)
        raise UsageError(
            f"{path} is a training state (weights/), for resuming training; sample from sampler weights instead, "
            f"e.g. {sampler} if it was saved with save_weights_for_sampler (tinker checkpoint list shows a run's checkpoints)."
        )


@contextmanager
def service_call(action: str, refused: str | None = None):
    """Turn the SDK's errors while doing `action` into one clear message.

    Account problems (key, permission, billing) and requests the service rejects as the
    user's error are UsageErrors (exit 2). `refused`, when given, explains a 400/404/422
    answer as a configuration mistake. Anything else is a TinkerServiceError.
    """
    try:
        try:
            yield
        except ValueError as raised:
            refused_answer = _refused_answer(raised)
            if refused_answer is None:
                raise
            raise refused_answer from None
    except (tinker.AuthenticationError, tinker.PermissionDeniedError, tinker.BillingError) as err:
        raise UsageError(
            f"the Tinker service refused the request while {action} (HTTP {err.status_code}: {_detail(err)}); "
            "check TINKER_API_KEY and the account's access and billing in the Tinker console."
        ) from None
    except (tinker.BadRequestError, tinker.NotFoundError, tinker.UnprocessableEntityError) as err:
        if refused is None:
            raise TinkerServiceError(f"the Tinker service rejected a request while {action}: {_detail(err)}") from err
        raise UsageError(f"{refused} (HTTP {err.status_code}: {_detail(err)})") from None
    except tinker.RequestFailedError as err:
        if err.category == types.RequestErrorCategory.User:
            raise UsageError(f"the Tinker service rejected a request while {action}: {err.message}") from None
        raise TinkerServiceError(_failure_message(action, err.message)) from err
    except tinker.TinkerError as err:
        raise TinkerServiceError(_failure_message(action, f"{err.__class__.__name__}: {err}")) from err


def _failure_message(action: str, detail: str) -> str:
    return (
        f"the Tinker service failed while {action}, after the SDK's retries with backoff: {detail}. "
        "Every completed round's state is saved on the service; its tinker:// path is in the run folder."
    )


def _detail(err: tinker.APIStatusError) -> str:
    """What the service said: the `detail` of a JSON error body, else the SDK's message
    (which wraps the whole body: "Error code: 400 - {'detail': ...}")."""
    body = err.body
    return str(body["detail"]) if isinstance(body, dict) and body.get("detail") else err.message


def _refused_answer(err: ValueError) -> tinker.APIStatusError | None:
    """The HTTP error behind a ValueError the SDK raises for a refused result, else None.

    Waiting on a result, the SDK turns an HTTP 4xx answer (a bare 400 after three tries) into
    a ValueError raised from its own status error, which says what was refused.
    """
    cause = err.__cause__
    return cause if isinstance(cause, tinker.APIStatusError) else None


def capacity_refusal(err: Exception) -> str | None:
    """What the service said when `err` refuses a training run for lack of room (HTTP 429, or a
    full adapter table), else None. The refusal comes as the SDK's status error, or as the
    ValueError it raises from one when it is the answer to a result."""
    answer = err if isinstance(err, tinker.APIStatusError) else _refused_answer(err) if isinstance(err, ValueError) else None
    if answer is None:
        return None
    detail = _detail(answer)
    if answer.status_code == 429 or (answer.status_code == 400 and ADAPTER_LIMIT_REFUSAL in detail):
        return f"HTTP {answer.status_code}: {detail}"
    return None


def create_training_client(create, wait: "ResultWaiter", capacity_timeout: float, say=None):
    """The training client `create()` (a call that returns the SDK's future of one) gives,
    asked again with backoff while the service has no room for another training run.

    Creating a training run is safe to repeat: a refused one holds nothing on the service.
    The first refusal is said once (to stderr unless `say` is given); after
    `capacity_timeout` seconds of refusals a UsageError says what was refused and which key
    gives more time. Any other error is raised as it came.
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    started, pause, said = time.monotonic(), CAPACITY_RETRY_FIRST_SECONDS, False
    while True:
        try:
            return wait(create())
        except (tinker.APIStatusError, ValueError) as err:
            refusal = capacity_refusal(err)
            if refusal is None:
                raise
            waited = time.monotonic() - started
            if waited + pause > capacity_timeout:
                raise UsageError(
                    f"the Tinker service had no room for another training run ({refusal}) for {waited:.0f} s; "
                    "end another run of this account (or server), or set tinker_capacity_timeout to wait longer."
                ) from None
            if not said:
                say(f"The Tinker service has no room for another training run now ({refusal}); waiting for one, "
                    f"retrying with backoff for up to {capacity_timeout:g} s (tinker_capacity_timeout).")
                said = True
            time.sleep(pause)
            pause = min(pause * 2, CAPACITY_RETRY_MAX_SECONDS)


def to_datum(example: TokenizedExample, weight: float) -> types.Datum:
    """One training example as a Tinker `Datum`, each of its target tokens weighted `weight`.

    Token t is predicted from the tokens before it, so the model reads tokens[:-1] and the
    targets are tokens[1:], each weighted `weight` when it is an assistant token (the loss
    mask) and 0 elsewhere. The service's cross_entropy is the weighted sum of the targets'
    losses, so with `example_weights` it trains on the local backend's objective, at the
    same scale: `max_grad_norm` (the service's grad_clip_norm) clips the same gradient.
    """
    tokens, mask = example.input_ids, example.loss_mask
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [weight * m for m in mask[1:]]},
    )


def to_policy_datum(datum: PolicyDatum) -> types.Datum:
    """One sampled completion as a Tinker `Datum` for the `importance_sampling` or `ppo` loss,
    as tinker-cookbook's RL code builds it (rl/data_processing.py, recipes/rl_loop.py).

    The model reads the prompt and every sampled token but the last; position t's target is
    token t + 1 of prompt + completion. `logprobs` (the sampler's, of each sampled token) and
    `advantages` (the completion's, on each of its tokens) are 0 where the target is a prompt
    token, so the prompt adds nothing to the loss. No `weights` or `mask`: the RL losses take
    none (the cookbook strips its `mask` before sending).
    """
    tokens = datum.prompt_tokens + datum.completion_tokens
    before = len(datum.prompt_tokens) - 1  # positions whose target is a prompt token
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": tokens[1:],
            "logprobs": [0.0] * before + [float(lp) for lp in datum.sampling_logprobs],
            "advantages": [0.0] * before + [float(datum.advantage)] * len(datum.completion_tokens),
        },
    )


def policy_loss_config(loss: PolicyLoss) -> dict[str, float] | None:
    """The `loss_fn_config` of `loss`: PPO's clip range, under the names Tinker's API takes."""
    if loss.name == "ppo":
        return {"clip_low_threshold": loss.clip_low, "clip_high_threshold": loss.clip_high}
    return None


def loss_sum(output: types.ForwardBackwardOutput, batch: list[TokenizedExample]) -> float:
    """Summed negative log-likelihood of the target tokens of `batch` (its loss masks).

    Computed from the per-token log-probabilities the service returns, as tinker-cookbook
    does, so it does not depend on the names of the service's metrics.
    """
    return sum(example_loss_sums(output, batch))


def example_loss_sums(output: types.ForwardBackwardOutput, batch: list[TokenizedExample]) -> list[float]:
    """Each example's summed negative log-likelihood of its target tokens (its loss mask), in order."""
    return [
        -float(np.dot(out["logprobs"].to_numpy(), np.asarray(example.loss_mask[1:], dtype=np.float64)))
        for out, example in zip(output.loss_fn_outputs, batch, strict=True)
    ]


class ResultWaiter:
    """Waits on the SDK's futures, training's and sampling's alike, but not for ever on a
    service that has gone away.

    The SDK retries a refused or unanswered request for as long as it takes, so the bound
    belongs here, around every wait on a result, not inside the SDK's retries: while a result
    is outstanding, every REACHABILITY_CHECK_SECONDS one small GET checks that the service at
    `service_url` still answers HTTP (any status will do: something is there). Once it has not
    answered for `unreachable_timeout` seconds in a row, the wait ends with the SDK's
    APIConnectionError, which `service_call` reports like any failure after retries. The
    waits of one backend share the checks: many samples in flight cost one GET per interval.
    """

    def __init__(self, service_url: str, unreachable_timeout: float):
        self.service_url = service_url
        self.unreachable_timeout = unreachable_timeout
        self._lock = threading.Lock()  # one check at a time; the others read its outcome
        self._checked_at: float | None = None  # when the last check ended (monotonic)
        self._unreachable_since: float | None = None  # when the first failed check of this outage began
        self._problem: str | None = None

    def __call__(self, future: tinker.APIFuture):
        """The result of `future`, waiting in this thread (training, client creation)."""
        while True:
            try:
                return future.result(timeout=REACHABILITY_CHECK_SECONDS)
            except TimeoutError:
                self._check()

    async def wait_async(self, future: tinker.APIFuture):
        """The result of `future`, waiting on the event loop (sampling under Inspect). A wait
        that ends without the result (given up, or cancelled by Inspect) cancels the request,
        so the SDK stops polling for it."""
        waited = asyncio.wrap_future(future.future())
        try:
            while True:
                done, _ = await asyncio.wait({waited}, timeout=REACHABILITY_CHECK_SECONDS)
                if done:
                    return waited.result()
                await asyncio.to_thread(self._check)
        finally:
            waited.cancel()  # no-op once done

    def _check(self) -> None:
        """Check that the service answers, unless a check ended less than an interval ago;
        raise APIConnectionError once it has not answered for `unreachable_timeout` seconds."""
        with self._lock:
            started = time.monotonic()
            if self._checked_at is None or started - self._checked_at >= REACHABILITY_CHECK_SECONDS:
                # Checks a wait makes follow each other within an interval; after a longer gap
                # nothing was slow in between, so an earlier failed check says nothing about now.
                if self._checked_at is not None and started - self._checked_at > 2 * REACHABILITY_CHECK_SECONDS:
                    self._unreachable_since = None
                self._problem = self._unreachable()
                if self._problem is None:
                    self._unreachable_since = None
                elif self._unreachable_since is None:
                    self._unreachable_since = started
                self._checked_at = time.monotonic()
            if self._unreachable_since is not None and time.monotonic() - self._unreachable_since >= self.unreachable_timeout:
                raise tinker.APIConnectionError(
                    message=f"the service at {self.service_url} has not answered for "
                    f"{self.unreachable_timeout:g} s ({self._problem})",
                    request=httpx.Request("GET", self._health_url),
                )

    @property
    def _health_url(self) -> str:
        return f"{self.service_url.rstrip('/')}/api/v1/healthz"

    def _unreachable(self) -> str | None:
        """Why the service cannot be reached now, or None when it answers. A server that
        accepts the connection but never replies counts as unreachable after
        REACHABILITY_ANSWER_SECONDS."""
        try:
            httpx.get(self._health_url, timeout=REACHABILITY_ANSWER_SECONDS)
        except httpx.TransportError as err:
            return f"{err.__class__.__name__}: {err}"
        return None


class _SubmittedStepMetrics(StepMetrics):
    """The StepMetrics of a submitted forward_backward: `loss_sum` arrives with its result.

    The loop reads the loss after optim_step, which has waited for both requests, so
    reading it then does not block; read earlier, it waits for the result.
    """

    def __init__(self, future: tinker.APIFuture, batch: list[TokenizedExample], wait: ResultWaiter):
        object.__setattr__(self, "_future", future)
        object.__setattr__(self, "_batch", batch)
        object.__setattr__(self, "_wait", wait)
        object.__setattr__(self, "n_tokens", sum(e.n_target_tokens for e in batch))

    @property
    def loss_sum(self) -> float:
        with service_call("training"):
            return loss_sum(self._wait(self._future), self._batch)


class _SubmittedPolicyStepMetrics(PolicyStepMetrics):
    """The PolicyStepMetrics of a submitted RL forward_backward, computed when first read from
    the per-token logprobs the service returns for the completion tokens, with the same loss
    function as the local backend's (provider/policy_loss.py), as `loss_sum` is for SFT."""

    def __init__(self, future: tinker.APIFuture, data: list[PolicyDatum], loss: PolicyLoss, wait: ResultWaiter):
        object.__setattr__(self, "_future", future)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_loss", loss)
        object.__setattr__(self, "_wait", wait)
        object.__setattr__(self, "_sums", None)
        object.__setattr__(self, "n_tokens", sum(len(d.completion_tokens) for d in data))

    def _summed(self) -> tuple[float, int, float]:
        """(summed loss, clipped tokens, summed sampling minus current logprob) over the completion tokens."""
        if self._sums is None:
            with service_call("training"):
                output = self._wait(self._future)
            loss_sum, n_clipped, gap = 0.0, 0, 0.0
            for out, datum in zip(output.loss_fn_outputs, self._data, strict=True):
                # Position len(prompt) - 1 predicts the first completion token.
                logprobs = out["logprobs"].to_numpy().astype(np.float64)[len(datum.prompt_tokens) - 1 :]
                sampling = np.asarray(datum.sampling_logprobs, dtype=np.float64)
                advantages = np.full_like(sampling, datum.advantage)
                loss_sum += float(per_token_loss(logprobs, sampling, advantages, self._loss).sum())
                n_clipped += clipped_count(logprobs, sampling, advantages, self._loss)
                gap += float((sampling - logprobs).sum())
            object.__setattr__(self, "_sums", (loss_sum, n_clipped, gap))
        return self._sums

    @property
    def loss_sum(self) -> float:
        return self._summed()[0]

    @property
    def clip_fraction(self) -> float:
        return self._summed()[1] / max(self.n_tokens, 1)

    @property
    def kl_sample_train(self) -> float:
        return self._summed()[2] / max(self.n_tokens, 1)


def load_tokenizer(
    source: str | None, client: tinker.TrainingClient | tinker.SamplingClient, base_model: str,
    hint: str = "tinker_tokenizer",
):
    """The tokenizer whose chat template renders examples and prompts.

    `source` (a local folder or hub id) when given; otherwise the one the service names for
    `base_model` (asked of a training or sampling client), which the SDK downloads from the
    Hugging Face hub. `hint` names the setting that sets `source`, for the error message.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source) if source else client.get_tokenizer()
    except (OSError, ValueError) as err:
        where = f"from {source!r}" if source else f"for {base_model!r} from the Hugging Face hub"
        raise UsageError(
            f"could not load the tokenizer {where} ({err.__class__.__name__}: {str(err).splitlines()[0]}); "
            f"set {hint} to a local folder holding the model's tokenizer files."
        ) from None


def load_architecture(source: str) -> tuple[str, int]:
    """(model_type, hidden_size) from the Hugging Face config in `source` (folder or hub id).

    Only `learning_rate: auto` needs them; the service does not report the hidden size.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise UsageError(
            f"learning_rate: auto needs the model's hidden size from its Hugging Face config, which could not "
            f"be loaded from {source!r} ({err.__class__.__name__}); set learning_rate to a number, or "
            "tinker_tokenizer to a local folder holding the model's config.json."
        ) from None
    return config.model_type, config.get_text_config().hidden_size


class TinkerSampler:
    """A Sampler over the SDK's SamplingClient: one request per call, the SDK retrying as it
    does, each wait bounded by `wait` like training's."""

    def __init__(self, client: tinker.SamplingClient, wait: ResultWaiter):
        self.client = client
        self.wait = wait

    async def sample_async(self, prompt: list[int], num_samples: int, params: SamplingParams) -> list[SampledSequence]:
        """Send one sample request and wait for it.

        The stop tokens (the renderer's end of turn) are sent when there are any, else the
        stop strings: the SDK takes one kind per request, and the provider cuts stop strings
        from the text in any case.
        """
        sent = types.SamplingParams(
            max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
            seed=params.seed, stop=list(params.stop_tokens) or list(params.stop_strings) or None,
        )
        with service_call("sampling"):
            response = await self.wait.wait_async(self.client.sample(
                types.ModelInput.from_ints(prompt), num_samples, sent, topk_sample_logprobs=params.top_logprobs
            ))
        return [
            SampledSequence(
                tokens=list(s.tokens), stop_reason="stop" if s.stop_reason == "stop" else "length",
                logprobs=s.logprobs if params.logprobs else None,
                top_logprobs=s.topk_logprobs if params.top_logprobs else None,
            )
            for s in response.sequences
        ]

    def max_connections(self) -> int:
        return SERVICE_MAX_CONNECTIONS


def check_model_offered(base_model: str, base_url: str | None, wait: ResultWaiter) -> None:
    """Raise UsageError when the service lists the models it offers and `base_model` is none of them.

    Asked before a training run is created, so a misspelt model is one clear message that
    names the alternatives. A Tinker-compatible server may accept any name and train its one
    model under it (SkyRL does), which would otherwise go unnoticed.
    """
    with service_call("asking the Tinker service which models it offers"):
        capabilities = wait(tinker.RestClient(base_url=base_url).get_server_capabilities())
    offered = [m.model_name for m in capabilities.supported_models]
    if offered and base_model not in offered:
        raise UsageError(
            f"base_model {base_model!r} is not offered by the Tinker service at {resolve_base_url(base_url)}; "
            f"it offers: {', '.join(offered)}. Set base_model to one of them."
        )


class TinkerBackend:
    """A LoRA training run on the Tinker service, driven through the `tinker` SDK's clients."""

    def __init__(
        self,
        service: tinker.ServiceClient,
        training: tinker.TrainingClient,
        tokenizer,
        renderer: Renderer,
        info: BackendInfo,
        *,
        wait: ResultWaiter,
        adamw: AdamWSettings,
        seed: int,
        capacity_timeout: float,
    ):
        self.service = service
        self.training = training
        self.tokenizer = tokenizer
        self.renderer = renderer
        self.info = info
        self.wait = wait
        self.adamw = adamw
        self.seed = seed
        self.capacity_timeout = capacity_timeout
        self.steps = 0  # optimizer steps taken, carried through checkpoints; names the saved states
        self._submitted: list[tinker.APIFuture] = []  # forward_backward results not yet awaited
        self._sampler: TinkerSampler | None = None  # None: the weights changed since
        self._sampler_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: TinkerBackendSettings) -> "TinkerBackend":
        """Create a LoRA training run of `settings.base_model` on the service `settings` name."""
        model_type = hidden_size = None
        if settings.learning_rate_auto:  # checked before the training run exists
            model_type, hidden_size = load_architecture(settings.tinker_tokenizer or settings.base_model)
        wait = ResultWaiter(resolve_base_url(settings.tinker_base_url), settings.tinker_unreachable_timeout)
        check_model_offered(settings.base_model, settings.tinker_base_url, wait)
        service = tinker.ServiceClient(base_url=settings.tinker_base_url)
        with service_call(
            f"creating a LoRA training run of {settings.base_model!r}",
            refused=f"base_model {settings.base_model!r} at lora_rank {settings.lora_rank} was refused by the Tinker service",
        ):
            training = create_training_client(
                # The layers the local backend adapts (all-linear: attention and MLP); the SDK's
                # default would adapt the unembedding too, which PEFT's all-linear leaves out.
                lambda: service.create_lora_training_client(
                    settings.base_model, rank=settings.lora_rank, seed=settings.seed, train_unembed=False,
                ),
                wait, settings.tinker_capacity_timeout,
            )
        tokenizer = load_tokenizer(settings.tinker_tokenizer, training, settings.base_model)
        renderer = use_renderer(tokenizer, settings.renderer_name, settings.base_model)
        info = BackendInfo(
            base_model=settings.base_model,
            device=f"Tinker ({resolve_base_url(settings.tinker_base_url)})",
            total_parameters=None,  # the service does not report parameter counts
            trainable_parameters=None,
            dtype="precision chosen by the service",
            model_type=model_type or training.get_info().model_data.arch,
            hidden_size=hidden_size,
        )
        return cls(service, training, tokenizer, renderer, info, wait=wait, adamw=settings.adamw, seed=settings.seed,
                   capacity_timeout=settings.tinker_capacity_timeout)

    def forward_backward(self, batch: list[TokenizedExample]) -> StepMetrics:
        """Submit the batch's forward and backward pass (the objective `example_weights` states);
        the returned loss, the mean per target token, arrives with its result."""
        data = [to_datum(e, w) for e, w in zip(batch, example_weights(batch))]
        future = self.training.forward_backward(data, LOSS_FN)
        self._submitted.append(future)
        return _SubmittedStepMetrics(future, batch, self.wait)

    def example_losses(self, examples: list[TokenizedExample]) -> list[float]:
        """Each example's mean loss per target token, from the service's `forward` (no gradient)."""
        data = [to_datum(e, 1.0) for e in examples]
        with service_call("training"):
            output = self.wait(self.training.forward(data, LOSS_FN))
        return [total / max(e.n_target_tokens, 1) for total, e in zip(example_loss_sums(output, examples), examples)]

    def forward_backward_policy(self, data: list[PolicyDatum], loss: PolicyLoss) -> PolicyStepMetrics:
        """Submit the RL step's forward and backward pass with Tinker's `loss.name` loss (PPO's
        clip range in `loss_fn_config`); the metrics arrive with its result."""
        future = self.training.forward_backward([to_policy_datum(d) for d in data], loss.name, policy_loss_config(loss))
        self._submitted.append(future)
        return _SubmittedPolicyStepMetrics(future, data, loss, self.wait)

    def optim_step(self, learning_rate: float) -> None:
        """Submit an Adam step at `learning_rate`, then wait for it and the submitted passes."""
        adamw = self.adamw
        step = self.training.optim_step(types.AdamParams(
            learning_rate=learning_rate, beta1=adamw.beta1, beta2=adamw.beta2, eps=adamw.eps,
            weight_decay=adamw.weight_decay, grad_clip_norm=adamw.max_grad_norm,
        ))
        submitted, self._submitted = self._submitted, []
        self._sampler = None
        self.steps += 1
        with service_call("training"):
            for future in submitted:
                self.wait(future)
            self.wait(step)

    def sampler(self, *, with_adapter: bool = True, rollout: bool = False) -> "TinkerSampler":
        """A sampler on the current weights, or (`with_adapter=False`) on the base model; the service
        samples rollouts and evaluations alike (`rollout` changes nothing here)."""
        if not with_adapter:
            with service_call(f"creating a sampling client of {self.info.base_model!r}"):
                client = self.wait(self.service.create_sampling_client(base_model=self.info.base_model))
            return TinkerSampler(client, self.wait)
        with self._sampler_lock:
            if self._sampler is None:
                with service_call("saving the weights for sampling"):
                    self._sampler = TinkerSampler(self.wait(self.training.save_weights_and_get_sampling_client()), self.wait)
            return self._sampler

    def save_checkpoint(self, directory: Path) -> str:
        """Save weights and optimizer state on the service as `step-<optimizer steps>`.

        Each save gets a new name, so a checkpoint folder that a crash left behind never
        points at a state saved after it. Writes the returned tinker:// path to
        `directory/tinker_checkpoint.json` and returns it.
        """
        directory = Path(directory)
        with service_call(f"saving the training state after step {self.steps}"):
            path = self.wait(self.training.save_state(f"step-{self.steps}")).path
        directory.mkdir(parents=True, exist_ok=True)
        record = {"state_path": path, "step": self.steps, "base_model": self.info.base_model}
        # A plain write: `directory` is a staging folder that the run folder seals (checksums,
        # fsync, rename; tracking/checkpoints.py), so a torn file is never loaded.
        (directory / CHECKPOINT_FILE).write_text(json.dumps(record, indent=2))
        return path

    def end_sampling(self) -> None:
        """Nothing to wait for: the service samples for this process alone."""

    def load_checkpoint(self, directory: Path) -> None:
        """Continue from the state saved in `directory`: a new training client with its weights
        and optimizer state (the SDK's replacement for the deprecated `load_state`)."""
        record = Path(directory) / CHECKPOINT_FILE
        if not record.is_file():
            raise UsageError(f"{record} does not exist: {directory} holds no checkpoint of the tinker backend.")
        saved = json.loads(record.read_text())
        path = saved["state_path"]
        with service_call(f"resuming from {path}", refused=f"the checkpoint {path} (from {record}) cannot be resumed"):
            self.training = create_training_client(
                lambda: self.service.create_training_client_from_state_with_optimizer(path), self.wait, self.capacity_timeout
            )
        self.steps, self._submitted, self._sampler = saved["step"], [], None
