"""A stand-in for the Tinker service on 127.0.0.1: a reverse proxy in front of a local Tinker
server that passes every request on, except those it is told to refuse or to leave unanswered.

It lets a test make a real server misbehave the ways the managed service can: answer the
first N requests to an endpoint with HTTP 429 or a capacity refusal, or stop answering
altogether from the first request to an endpoint on (a hung server: connections are
accepted and never answered, health checks included).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# Hop-by-hop headers, and those httpx has already acted on (it decodes the body).
_NOT_PASSED_ON = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "host"}


@dataclass
class Refusal:
    """Answer the next `times` requests whose path ends with `endpoint` with `status`, the
    JSON body `{"detail": detail}` and `headers`, instead of passing them on."""

    endpoint: str
    times: int
    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    refused: int = 0  # requests refused so far


@dataclass
class ServiceStandIn:
    """The proxy: `start()` it, point the SDK at `url`, `close()` it when done."""

    upstream: str
    refusals: list[Refusal] = field(default_factory=list)
    stall_from: str | None = None  # a path ending: from the first such request on, nothing is answered
    requests: list[str] = field(default_factory=list)  # paths received, in order
    stalled: threading.Event = field(default_factory=threading.Event)
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "ServiceStandIn":
        stand_in = self
        client = httpx.Client(base_url=self.upstream, timeout=600.0)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's client expects

            def log_message(self, *args):
                pass

            def _handle(self):
                body = self._body()
                answer = stand_in._decide(self.path)
                if answer == "stall":
                    stand_in._released.wait()
                    self.close_connection = True
                    return
                if answer is not None:
                    self._reply(answer.status, {"content-type": "application/json", **answer.headers},
                                json.dumps({"detail": answer.detail}).encode())
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_PASSED_ON}
                upstream = client.request(self.command, self.path, headers=headers, content=body)
                passed = {k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_PASSED_ON}
                self._reply(upstream.status_code, passed, upstream.content)

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _reply(self, status: int, headers: dict, content: bytes):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _decide(self, path: str):
        """None: pass the request on; "stall": never answer it; else the Refusal to answer with."""
        with self._lock:
            self.requests.append(path)
            if self.stall_from is not None and (self.stalled.is_set() or path.endswith(self.stall_from)):
                self.stalled.set()
                return "stall"
            for refusal in self.refusals:
                if path.endswith(refusal.endpoint) and refusal.refused < refusal.times:
                    refusal.refused += 1
                    return refusal
        return None

    def close(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
