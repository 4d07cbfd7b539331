"""An in-process stand-in for the Tinker service, for tests of the tinker backend and the provider.

The service cannot be reached from CI, so these fakes take its place behind the SDK's
interfaces: the methods the backend and the provider call on `ServiceClient`, `RestClient`,
`TrainingClient` and `SamplingClient`, with the SDK's signatures (a test checks them), returning the SDK's
real `tinker.types` objects inside real `tinker.APIFuture`s. Behind them is a real tiny
LoRA model, so training changes weights and sampling generates from them. Every request
and every wait on a result is recorded in `FakeTinker.log` for tests to assert on.
"""

from __future__ import annotations

import copy
import itertools
from concurrent.futures import Future
from pathlib import Path

import httpx
import numpy as np
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
import tinker
from tinker import types
from tinker.lib.public_interfaces.api_future import AwaitableConcurrentFuture
from transformers import AutoModelForCausalLM, AutoTokenizer


API_KEY = "tml-test-key-never-written-anywhere"


class RecordedFuture(AwaitableConcurrentFuture):
    """A finished SDK future whose waits are recorded, so tests can see when the engine waits."""

    def __init__(self, fake: "FakeTinker", name: str, value=None, error: Exception | None = None):
        future = Future()
        future.set_exception(error) if error is not None else future.set_result(value)
        super().__init__(future)
        self.fake, self.name = fake, name

    def result(self, timeout=None):
        self.fake.log.append(("wait", self.name))
        return super().result(timeout)


def http_error(cls, status: int, message: str):
    """An SDK status error as the SDK raises it for an HTTP answer with `status`."""
    response = httpx.Response(status, request=httpx.Request("POST", "http://tinker.test/api/v1"))
    return cls(message, response=response, body=None)


class FakeTinker:
    """The service's state: recorded requests, saved states, and failures to inject."""

    def __init__(self, model_dir: Path, offered: tuple[str, ...] = ()):
        self.model_dir = Path(model_dir)
        self.offered = list(offered)  # the base models get_server_capabilities lists; none: any is accepted
        self.log: list[tuple] = []
        self.states: dict[str, dict] = {}  # tinker:// path -> saved weights and optimizer
        self.failures: dict[str, list[Exception | None]] = {}  # method -> outcomes of its next calls
        self.tokenizer_error: Exception | None = None
        self.run_ids = itertools.count(1)
        self.answers: dict[str, list] = {}  # method -> the values its futures returned
        self.scripted: list[list[int]] = []  # token lists the next samples return instead of generating
        self.training_runs: dict[str, str] = {}  # training run id -> base model, for RestClient lookups

    def fail(self, method: str, error: Exception, after: int = 0) -> None:
        """Make the call number `after` (0-based, from now) of `method` fail with `error`."""
        self.failures[method] = [None] * after + [error]

    def future(self, name: str, value=None) -> RecordedFuture:
        planned = self.failures.get(name)
        error = planned.pop(0) if planned else None
        if error is None:
            self.answers.setdefault(name, []).append(value)
        return RecordedFuture(self, name, value, error)

    def service_client(self, **kwargs) -> "FakeServiceClient":
        self.log.append(("ServiceClient", kwargs))
        return FakeServiceClient(self)

    def rest_client(self, **kwargs) -> "FakeRestClient":
        self.log.append(("RestClient", kwargs))
        return FakeRestClient(self)

    def calls(self, name: str) -> list[tuple]:
        return [entry[1:] for entry in self.log if entry[0] == name]


class FakeRestClient:
    def __init__(self, fake: FakeTinker):
        self.fake = fake

    def get_training_run_by_tinker_path(self, tinker_path, access_scope="owned"):
        self.fake.log.append(("get_training_run_by_tinker_path", tinker_path))
        run = types.ParsedCheckpointTinkerPath.from_tinker_path(tinker_path).training_run_id
        if run not in self.fake.training_runs:
            return RecordedFuture(self.fake, "get_training_run_by_tinker_path",
                                  error=http_error(tinker.NotFoundError, 404, f"training run {run} not found"))
        info = types.TrainingRun(training_run_id=run, base_model=self.fake.training_runs[run], model_owner="test",
                                 is_lora=True, lora_rank=8, last_request_time="2026-12-01T00:00:00Z")
        return self.fake.future("get_training_run_by_tinker_path", info)

    def get_server_capabilities(self):
        self.fake.log.append(("get_server_capabilities",))
        models = [types.SupportedModel(model_name=name) for name in self.fake.offered]
        return self.fake.future("get_server_capabilities", types.GetServerCapabilitiesResponse(supported_models=models))


class FakeServiceClient:
    def __init__(self, fake: FakeTinker):
        self.fake = fake

    def create_sampling_client(self, model_path=None, base_model=None, retry_config=None, record_stability_info=False):
        """A sampler on the base model, or on a saved state's weights (any path whose run is known)."""
        self.fake.log.append(("create_sampling_client", model_path, base_model))
        base = AutoModelForCausalLM.from_pretrained(self.fake.model_dir, dtype=torch.float32)
        if model_path is not None:
            run = types.ParsedCheckpointTinkerPath.from_tinker_path(model_path).training_run_id
            if run not in self.fake.training_runs:
                return RecordedFuture(self.fake, "create_sampling_client",
                                      error=http_error(tinker.NotFoundError, 404, f"checkpoint {model_path} not found"))
        return self.fake.future("create_sampling_client", FakeSamplingClient(self.fake, base))

    def create_lora_training_client(
        self, base_model, rank=32, seed=None, train_mlp=True, train_attn=True, train_unembed=True,
        user_metadata=None, optimizer=None,
    ):
        self.fake.log.append(("create_lora_training_client", base_model, rank, seed,
                              {"mlp": train_mlp, "attn": train_attn, "unembed": train_unembed}))
        return self.fake.future("create_lora_training_client", FakeTrainingClient(self.fake, base_model, rank, seed))

    def create_training_client_from_state_with_optimizer(
        self, path, base_model=None, user_metadata=None, weights_access_token=None
    ):
        self.fake.log.append(("create_training_client_from_state_with_optimizer", path))
        if path not in self.fake.states:
            return RecordedFuture(self.fake, "create_training_client_from_state_with_optimizer",
                                  error=http_error(tinker.NotFoundError, 404, f"checkpoint {path} not found"))
        state = self.fake.states[path]
        client = FakeTrainingClient(self.fake, state["base_model"], state["rank"], seed=None)
        set_peft_model_state_dict(client.model, state["adapter"])
        client.optimizer.load_state_dict(state["optimizer"])
        return self.fake.future("create_training_client_from_state_with_optimizer", client)


class FakeTrainingClient:
    """A LoRA training run: a tiny real model, AdamW, and the SDK's request/response types."""

    def __init__(self, fake: FakeTinker, base_model: str, rank: int, seed: int | None):
        self.fake, self.base_model, self.rank = fake, base_model, rank
        self.model_id = f"run-{next(fake.run_ids)}"
        torch.manual_seed(seed or 0)
        base = AutoModelForCausalLM.from_pretrained(fake.model_dir, dtype=torch.float32)
        self.model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=32, target_modules="all-linear"))
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=0.0)

    def forward_backward(self, data, loss_fn, loss_fn_config=None):
        self.fake.log.append(("forward_backward", data, loss_fn))
        outputs, total = [], 0.0
        for datum in data:
            weights = datum.loss_fn_inputs["weights"].to_torch()
            logprobs = self._logprobs(datum)
            loss = -(logprobs * weights).sum()  # Tinker's cross_entropy: a sum, not a mean
            loss.backward()
            total += loss.item()
            outputs.append({"logprobs": types.TensorData.from_torch(logprobs.detach())})
        output = types.ForwardBackwardOutput(
            loss_fn_output_type="ArrayRecord", loss_fn_outputs=outputs, metrics={"loss:sum": total}
        )
        return self.fake.future("forward_backward", output)

    def forward(self, data, loss_fn, loss_fn_config=None):
        self.fake.log.append(("forward", data, loss_fn))
        with torch.no_grad():
            outputs = [{"logprobs": types.TensorData.from_torch(self._logprobs(datum))} for datum in data]
        return self.fake.future("forward", types.ForwardBackwardOutput(
            loss_fn_output_type="ArrayRecord", loss_fn_outputs=outputs, metrics={}))

    def _logprobs(self, datum):
        ids = torch.tensor([datum.model_input.to_ints()])
        targets = datum.loss_fn_inputs["target_tokens"].to_torch()
        return self.model(input_ids=ids).logits[0].log_softmax(-1).gather(-1, targets[:, None])[:, 0]

    def optim_step(self, optim_params=None, *, adam_params=None):
        self.fake.log.append(("optim_step", optim_params))
        if optim_params.grad_clip_norm > 0:  # the service clips the global norm; 0 means no clipping
            torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], optim_params.grad_clip_norm)
        for group in self.optimizer.param_groups:
            group.update(
                lr=optim_params.learning_rate, betas=(optim_params.beta1, optim_params.beta2),
                eps=optim_params.eps, weight_decay=optim_params.weight_decay,
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return self.fake.future("optim_step", types.OptimStepResponse(metrics={}))

    def save_state(self, name, ttl_seconds=None, overwrite=False, user_metadata=None):
        path = f"tinker://{self.model_id}/weights/{name}"
        self.fake.log.append(("save_state", name))
        self.fake.states[path] = {
            "base_model": self.base_model, "rank": self.rank,
            "adapter": copy.deepcopy(get_peft_model_state_dict(self.model)),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }
        return self.fake.future("save_state", types.SaveWeightsResponse(path=path))

    def save_weights_and_get_sampling_client(self, name=None, retry_config=None, record_stability_info=False,
                                             kind="snapshot"):
        self.fake.log.append(("save_weights_and_get_sampling_client",))
        sampler = FakeSamplingClient(self.fake, copy.deepcopy(self.model))
        return self.fake.future("save_weights_and_get_sampling_client", sampler)

    def get_info(self):
        return types.GetInfoResponse(
            model_data=types.ModelData(arch="llama", model_name=self.base_model),
            model_id=self.model_id, is_lora=True, lora_rank=self.rank,
        )

    def get_tokenizer(self):
        self.fake.log.append(("get_tokenizer",))
        if self.fake.tokenizer_error is not None:
            raise self.fake.tokenizer_error
        return AutoTokenizer.from_pretrained(self.fake.model_dir)


class FakeSamplingClient:
    """Greedy or sampled generation from a snapshot of the training run's weights.

    Like the service, it stops at the stop tokens a request names, else at the model's EOS,
    and returns each sampled token's log-probability (and the top k when asked). Token lists
    in `FakeTinker.scripted` are returned instead of generating, one per sample.
    """

    def __init__(self, fake: FakeTinker, model):
        self.fake, self.model = fake, model.eval()
        self.eos = model.config.eos_token_id

    @torch.no_grad()
    def sample(self, prompt, num_samples, sampling_params, include_prompt_logprobs=False, topk_prompt_logprobs=0,
               topk_sample_logprobs=0, target_prompt_logprobs=None, prompt_alt_tokens_k=0, prompt_logprobs_last_n=None):
        self.fake.log.append(("sample", prompt.to_ints(), num_samples, sampling_params))
        stop = [self.eos] if sampling_params.stop is None else list(sampling_params.stop)
        sequences = []
        for n in range(num_samples):
            ids = torch.tensor([prompt.to_ints()])
            if self.fake.scripted:
                out = self.fake.scripted.pop(0)
            else:
                sampled = sampling_params.temperature > 0
                out = self.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=sampling_params.max_tokens,
                    do_sample=sampled, temperature=sampling_params.temperature if sampled else None, top_p=None,
                    top_k=None, eos_token_id=[t for t in stop if isinstance(t, int)] or None, pad_token_id=self.eos,
                )[0, ids.shape[1]:].tolist()
            end = next((i for i, t in enumerate(out) if t in stop), None)
            stopped = end is not None
            tokens = out[: end + 1] if stopped else out[: sampling_params.max_tokens]
            logits = self.model(input_ids=torch.tensor([prompt.to_ints() + tokens])).logits[0, ids.shape[1] - 1 : -1]
            logprobs = logits.log_softmax(-1)
            chosen = logprobs.gather(-1, torch.tensor(tokens)[:, None])[:, 0]
            top = None
            if topk_sample_logprobs:
                values, indices = logprobs.topk(topk_sample_logprobs, dim=-1)
                top = [list(zip(i, v)) for i, v in zip(indices.tolist(), values.tolist())]
            sequences.append(types.SampledSequence(
                stop_reason="stop" if stopped else "length", sequence_id=f"seq-{len(self.fake.log)}-{n}",
                tokens_np=np.array(tokens, dtype=np.int32), logprobs_np=chosen.numpy().astype(np.float32),
                _topk_logprobs_list=top,
            ))
        return self.fake.future("sample", types.SampleResponse(sequences=sequences))
