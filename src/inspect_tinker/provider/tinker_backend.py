"""The `tinker` backend: LoRA training and sampling on Thinking Machines' managed Tinker service.

The loop's primitives map onto the `tinker` SDK one to one:
- forward_backward: one `Datum` per example, inputs and targets pre-shifted, weight 1 on the
  assistant tokens being predicted and 0 elsewhere, with the `cross_entropy` loss;
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
  the provider keeps one request per sample in flight (up to Inspect's max_connections).

Retries: the SDK already retries rate limits (429), timeouts, connection and server errors
(408, 409, 5xx) with exponential backoff, for every request and while polling results. We add
no retry layer of our own: re-sending a training request is not safe (a forward_backward
whose answer was lost may already have accumulated its gradients, and the SDK refuses further
requests on a training client after a failure). A failure that outlasts the SDK's retries
ends the run with a clear message; every completed round's state is saved on the service and
its tinker:// path is in the run folder.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tinker
from tinker import types
from tinker.lib.base_url import resolve_base_url

from inspect_tinker.data.render import TokenizedExample
from inspect_tinker.data.renderers import Renderer, use_renderer
from inspect_tinker.provider.backend import SERVICE_MAX_CONNECTIONS, AdamWSettings, BackendInfo, SampledSequence, SamplingParams, StepMetrics
from inspect_tinker.errors import UsageError
from inspect_tinker.tracking.run_folder import write_json_atomic

CHECKPOINT_FILE = "tinker_checkpoint.json"  # in a round folder: the round's tinker:// state path
LOSS_FN = "cross_entropy"


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
        yield
    except (tinker.AuthenticationError, tinker.PermissionDeniedError, tinker.BillingError) as err:
        raise UsageError(
            f"the Tinker service refused the request while {action} (HTTP {err.status_code}: {err.message}); "
            "check TINKER_API_KEY and the account's access and billing in the Tinker console."
        ) from None
    except (tinker.BadRequestError, tinker.NotFoundError, tinker.UnprocessableEntityError) as err:
        if refused is None:
            raise TinkerServiceError(f"the Tinker service rejected a request while {action}: {err.message}") from err
        raise UsageError(f"{refused} (HTTP {err.status_code}: {err.message})") from None
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


def to_datum(example: TokenizedExample) -> types.Datum:
    """One training example as a Tinker `Datum`.

    Token t is predicted from the tokens before it, so the model reads tokens[:-1] and the
    targets are tokens[1:], each weighted 1 when it is an assistant token (the loss mask).
    The weights are 0/1, not divided by the batch's token count as the local engine's loss is:
    Adam's update does not depend on a constant scale of the gradient.
    """
    tokens, mask = example.input_ids, example.loss_mask
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [float(m) for m in mask[1:]]},
    )


def loss_sum(output: types.ForwardBackwardOutput, data: list[types.Datum]) -> float:
    """Summed negative log-likelihood of the weighted target tokens of `data`.

    Computed from the per-token log-probabilities the service returns, as tinker-cookbook
    does, so it does not depend on the names of the service's metrics.
    """
    return -sum(
        float(np.dot(out["logprobs"].to_numpy(), datum.loss_fn_inputs["weights"].to_numpy()))
        for out, datum in zip(output.loss_fn_outputs, data, strict=True)
    )


class _SubmittedStepMetrics(StepMetrics):
    """The StepMetrics of a submitted forward_backward: `loss_sum` arrives with its result.

    The loop reads the loss after optim_step, which has waited for both requests, so
    reading it then does not block; read earlier, it waits for the result.
    """

    def __init__(self, future: tinker.APIFuture, data: list[types.Datum]):
        object.__setattr__(self, "_future", future)
        object.__setattr__(self, "_data", data)
        n_tokens = sum(int(d.loss_fn_inputs["weights"].to_numpy().sum()) for d in data)
        object.__setattr__(self, "n_tokens", n_tokens)

    @property
    def loss_sum(self) -> float:
        with service_call("training"):
            return loss_sum(self._future.result(), self._data)


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
    """A Sampler over the SDK's SamplingClient: one request per call, the SDK retrying as it does."""

    def __init__(self, client: tinker.SamplingClient):
        self.client = client

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
            response = await self.client.sample(
                types.ModelInput.from_ints(prompt), num_samples, sent, topk_sample_logprobs=params.top_logprobs
            )
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
        adamw: AdamWSettings,
        seed: int,
    ):
        self.service = service
        self.training = training
        self.tokenizer = tokenizer
        self.renderer = renderer
        self.info = info
        self.adamw = adamw
        self.seed = seed
        self.steps = 0  # optimizer steps taken, carried through checkpoints; names the saved states
        self._submitted: list[tinker.APIFuture] = []  # forward_backward results not yet awaited
        self._sampler: TinkerSampler | None = None  # None: the weights changed since
        self._sampler_lock = threading.Lock()

    @classmethod
    def from_config(cls, config) -> "TinkerBackend":
        """Create a LoRA training run of `config.base_model` on the service named by the config."""
        model_type = hidden_size = None
        if config.learning_rate == "auto":  # checked before the training run exists
            model_type, hidden_size = load_architecture(config.tinker_tokenizer or config.base_model)
        service = tinker.ServiceClient(base_url=config.tinker_base_url)
        with service_call(
            f"creating a LoRA training run of {config.base_model!r}",
            refused=f"base_model {config.base_model!r} was refused by the Tinker service; use a model it offers",
        ):
            training = service.create_lora_training_client(
                config.base_model, rank=config.lora_rank, seed=config.seed
            ).result()
        tokenizer = load_tokenizer(config.tinker_tokenizer, training, config.base_model)
        renderer = use_renderer(tokenizer, config.renderer_name, config.base_model)
        info = BackendInfo(
            base_model=config.base_model,
            device=f"Tinker ({resolve_base_url(config.tinker_base_url)})",
            total_parameters=None,  # the service does not report parameter counts
            trainable_parameters=None,
            dtype="precision chosen by the service",
            model_type=model_type or training.get_info().model_data.arch,
            hidden_size=hidden_size,
        )
        return cls(service, training, tokenizer, renderer, info, adamw=AdamWSettings.from_config(config), seed=config.seed)

    def forward_backward(self, batch: list[TokenizedExample]) -> StepMetrics:
        """Submit the batch's forward and backward pass; the returned loss arrives with its result."""
        data = [to_datum(e) for e in batch]
        future = self.training.forward_backward(data, LOSS_FN)
        self._submitted.append(future)
        return _SubmittedStepMetrics(future, data)

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
                future.result()
            step.result()

    def sampler(self, *, with_adapter: bool = True) -> "TinkerSampler":
        """A sampler on the current weights, or (`with_adapter=False`) on the base model."""
        if not with_adapter:
            with service_call(f"creating a sampling client of {self.info.base_model!r}"):
                return TinkerSampler(self.service.create_sampling_client(base_model=self.info.base_model).result())
        with self._sampler_lock:
            if self._sampler is None:
                with service_call("saving the weights for sampling"):
                    self._sampler = TinkerSampler(self.training.save_weights_and_get_sampling_client().result())
            return self._sampler

    def save_checkpoint(self, directory: Path) -> str:
        """Save weights and optimizer state on the service as `step-<optimizer steps>`.

        Each save gets a new name, so a checkpoint folder that a crash left behind never
        points at a state saved after it. Writes the returned tinker:// path to
        `directory/tinker_checkpoint.json` and returns it.
        """
        directory = Path(directory)
        with service_call(f"saving the training state after step {self.steps}"):
            path = self.training.save_state(f"step-{self.steps}").result().path
        directory.mkdir(parents=True, exist_ok=True)
        record = {"state_path": path, "step": self.steps, "base_model": self.info.base_model}
        write_json_atomic(directory / CHECKPOINT_FILE, record)
        return path

    def end_sampling(self) -> None:
        """Nothing to wait for: the service samples for this process alone."""

    def load_checkpoint(self, directory: Path) -> None:
        """Continue from the state saved in `directory`: a new training client with its weights
        and optimizer state (the SDK's replacement for the deprecated `load_state`)."""
        record = Path(directory) / CHECKPOINT_FILE
        if not record.is_file():
            raise UsageError(f"{record} does not exist: {directory} holds no checkpoint of the tinker engine.")
        saved = json.loads(record.read_text())
        path = saved["state_path"]
        with service_call(f"resuming from {path}", refused=f"the checkpoint {path} (from {record}) cannot be resumed"):
            self.training = self.service.create_training_client_from_state_with_optimizer(path).result()
        self.steps, self._submitted, self._sampler = saved["step"], [], None
