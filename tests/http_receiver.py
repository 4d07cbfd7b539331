"""An HTTP receiver on 127.0.0.1 that speaks the EvalOps test-run API and takes webhooks."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVALOPS_KEY = "evalops-test-key-7f3a"
SUITE = "suite-42"
TEST_RUN_FIELDS = {"testSuiteId", "visibility", "sharedWithTeams", "name", "description", "config", "tags"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    path: str
    key: str
    body: dict


@dataclass
class Receiver:
    """EvalOps (`/api/v1/test-runs/`) and webhooks (`/hooks/<token>`) on one port that can go
    down and come back. It honours `Idempotency-Key`: a repeated key is answered as before and
    counted in `replays`, not accepted twice. A request it finds malformed is answered 400 and
    its reason kept in `rejections`."""

    port: int = field(default_factory=free_port)
    api_key: str = EVALOPS_KEY
    accepted: list[Received] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    replays: int = 0
    attempts: int = 0
    fail_next: list[int] = field(default_factory=list)  # statuses to answer the next requests with
    hold: threading.Event | None = None  # when set up, requests wait for it before being answered
    in_flight: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def keys(self, prefix: str) -> list[str]:
        return [r.key for r in self.accepted if r.path.startswith(prefix)]

    def bodies(self, prefix: str) -> list[dict]:
        return [r.body for r in self.accepted if r.path.startswith(prefix)]

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver._post(self)

            def do_GET(self):
                receiver._get(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, handler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _post(self, handler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        with self._lock:
            self.attempts += 1
            self.in_flight += 1
        try:
            if self.hold is not None:
                self.hold.wait()
            with self._lock:
                if self.fail_next:
                    return self._answer(handler, self.fail_next.pop(0), {"error": "try again"})
                status, body = self._check(handler, raw)
                if status == 400:
                    self.rejections.append(body["error"])
                elif status < 300:
                    key = handler.headers["Idempotency-Key"]
                    if any(r.key == key for r in self.accepted):
                        self.replays += 1
                    else:
                        self.accepted.append(Received(handler.path, key, json.loads(raw)))
            self._answer(handler, status, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _check(self, handler, raw: bytes) -> tuple[int, dict]:
        if handler.headers.get("Content-Type") != "application/json":
            return 400, {"error": f"content type {handler.headers.get('Content-Type')}"}
        if not handler.headers.get("Idempotency-Key"):
            return 400, {"error": "no Idempotency-Key"}
        body = json.loads(raw)
        if handler.path.startswith("/hooks/"):
            if not isinstance(body.get("text"), str) or not body.get("alert"):
                return 400, {"error": f"webhook body without text or alert: {sorted(body)}"}
            return 200, {"ok": True}
        if handler.path != "/api/v1/test-runs/":
            return 404, {"error": f"no route {handler.path}"}
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "unauthorized"}
        problems = [f"unknown field {k}" for k in body if k not in TEST_RUN_FIELDS]
        if body.get("testSuiteId") != SUITE:
            problems.append(f"testSuiteId {body.get('testSuiteId')!r}")
        if body.get("visibility") not in ("private", "team", "organization"):
            problems.append(f"visibility {body.get('visibility')!r}")
        if not isinstance(body.get("sharedWithTeams"), list):
            problems.append("sharedWithTeams is not a list")
        if not all(isinstance(t, str) for t in body.get("tags", [])):
            problems.append("tags must be strings")
        if not isinstance(body.get("config", {}).get("model"), str):
            problems.append("config.model is not a string")
        if problems:
            return 400, {"error": "; ".join(problems)}
        return 201, {"data": {"id": uuid.uuid4().hex, "status": "pending", **body}}

    def _get(self, handler) -> None:
        self._answer(handler, 404, {"error": "not found"})
