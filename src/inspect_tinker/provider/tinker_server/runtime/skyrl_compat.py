"""What SkyRL 0.4.0's Tinker API (written for the tinker 0.25 SDK) lacks for the tinker 0.38 SDK.

Runs inside the local server's own virtualenv (see skyrl_launch.py). An ASGI wrapper around
the API's app that changes three endpoints and passes everything else through untouched:

1. `/api/v1/asample`: 0.38 asserts that a sample's future carries `sample_sequence_ids`, one
   id per requested sample ("asample promises always carry sample_sequence_ids"); SkyRL's
   answer has none. We add them.
2. `/api/v1/load_weights`: 0.38 creates a training client from a saved state with one
   request, without `create_model` first: it names the session and a per-session sequence
   number instead of a `model_id`, and addresses the new model as
   `{session_id}:train:{model_seq_id}` afterwards. SkyRL answers 422 (`model_id` required).
   We create that model, with the LoRA settings of the checkpoint's model, and pass the
   request on with its `model_id`.
3. `/api/v1/get_info`: the model's `tokenizer_id` and `arch`, which SkyRL leaves empty. The
   SDK's `get_tokenizer()` loads the tokenizer `tokenizer_id` names, else the hub repository
   named like the model; we name the served model's folder, which holds its tokenizer, so
   a served model may have a short name (`SmolLM2-135M-Instruct`) and no hub is needed.

What it deliberately does not do: give sample requests a default stop token. SkyRL stops
only at the stop tokens a request names, where the managed service also stops at the
model's end of turn when none are named. Clients should name them (inspect-tinker does), as the
service's documentation advises, so a server that hid the difference would hide a bug.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ASAMPLE = "/api/v1/asample"
LOAD_WEIGHTS = "/api/v1/load_weights"
GET_INFO = "/api/v1/get_info"


class Tinker038Compat:
    """ASGI app: SkyRL's Tinker API `app`, speaking the protocol of the tinker 0.38 SDK."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path")
        if scope["type"] != "http" or scope.get("method") != "POST" or path not in (ASAMPLE, LOAD_WEIGHTS, GET_INFO):
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        try:
            request = json.loads(body or b"{}")
        except ValueError:  # not ours to judge: SkyRL answers it
            return await self.app(scope, _replay(body, receive), send)
        if path == LOAD_WEIGHTS and not request.get("model_id") and request.get("session_id"):
            request["model_id"] = await self._create_model_for_load(request)
            body = json.dumps(request).encode()
            scope = _with_content_length(scope, body)
        if path == ASAMPLE:
            send = _rewriting_answer(send, _sequence_ids_adder(int(request.get("num_samples") or 1)))
        if path == GET_INFO:
            send = _rewriting_answer(send, self._describe_model)
        return await self.app(scope, _replay(body, receive), send)

    def _describe_model(self, answer: dict) -> dict:
        config = self.app.state.engine_config
        folder = Path(config.base_model_checkpoint_path or config.base_model)
        model_data = answer.setdefault("model_data", {})
        model_data.setdefault("tokenizer_id", str(folder))
        if (folder / "config.json").is_file():
            model_data.setdefault("arch", json.loads((folder / "config.json").read_text()).get("model_type"))
        return answer

    async def _create_model_for_load(self, request: dict) -> str:
        """Create the model a 0.38 create-via-load names, unless it exists; return its id.

        When the checkpoint's model is unknown we create nothing: SkyRL then answers the
        load with its own 404 for the checkpoint.
        """
        api = sys.modules["skyrl.tinker.api"]
        model_id = f"{request['session_id']}:train:{request['model_seq_id']}"
        path = api.types.TinkerPath.parse(request.get("path", ""))
        async with api.AsyncSession(self.app.state.db_engine) as db:
            if path is None or await db.get(api.ModelDB, model_id) is not None:
                return model_id
            source = await db.get(api.ModelDB, path.primary_id)
            if source is None:
                return model_id
            lora = api.types.LoraConfig(**source.lora_config)
            request_id = await api.create_future(
                session=db, request_type=api.types.RequestType.CREATE_MODEL, model_id=model_id,
                request_data=api.types.CreateModelInput(lora_config=lora, model_role="policy"),
            )
            db.add(api.ModelDB(
                model_id=model_id, base_model=request.get("base_model") or source.base_model,
                lora_config=lora.model_dump(), status="created", request_id=request_id,
                session_id=request["session_id"],
            ))
            await db.commit()
        return model_id


async def _read_body(receive) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def _replay(body: bytes, receive):
    """An ASGI `receive` that hands over `body` once, then defers to the real one (disconnects)."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _with_content_length(scope: dict, body: bytes) -> dict:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    return dict(scope, headers=headers + [(b"content-length", str(len(body)).encode())])


def _sequence_ids_adder(num_samples: int):
    def add(answer: dict) -> dict:
        answer.setdefault("sample_sequence_ids", [f"{answer.get('request_id')}:{i}" for i in range(num_samples)])
        return answer

    return add


def _rewriting_answer(send, rewrite):
    """An ASGI `send` that passes a successful JSON answer through `rewrite` (dict -> dict)."""
    start, chunks = None, []

    async def sending(message):
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        if start["status"] == 200:
            body = json.dumps(rewrite(json.loads(body))).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send(dict(start, headers=headers + [(b"content-length", str(len(body)).encode())]))
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return sending
