"""Start, wait for and stop a local Tinker-compatible server: SkyRL 0.4.0's Tinker API, JAX on CPU.

Two processes run in the server's own virtualenv (environment.py): the API, an HTTP server
on 127.0.0.1, and the engine it starts, which holds the model and does the work. Both live
in a process group of their own, so a Ctrl-C meant for the caller does not reach them
half-way; `stop()` ends them in order (the API stops its engine), then makes sure of the
whole group. Each of them also ends when its parent does (runtime/skyrl_launch.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import httpx

from inspect_tinker.errors import UsageError
from inspect_tinker.provider.tinker_server.environment import ensure_environment
from inspect_tinker.provider.tinker_server.models import ServedModel

LAUNCHER = files("inspect_tinker.provider.tinker_server") / "runtime" / "skyrl_launch.py"
# Starting takes about 20 s for the tiny model and 40 s for SmolLM2 on two idle cores; a
# loaded machine can take several times that. Waiting ends at once when the server exits.
READY_TIMEOUT_SECONDS = 900.0
STOP_TIMEOUT_SECONDS = 30.0  # the API gives its engine 5 s, then kills it
DEFAULT_PORT = 8124
DEFAULT_MAX_LORA_ADAPTERS = 8


@dataclass(frozen=True)
class ServerSettings:
    """What a local server serves and where.

    `max_lora_adapters` caps the training clients the server holds at once: each create or
    resume of a training run takes one of its slots (slot 0 is the base model's, so N slots
    hold N - 1 runs) until the server stops. `state_dir` keeps the server's database and
    checkpoints; a server restarted on the same folder can resume what it saved.
    """

    model: ServedModel
    port: int
    state_dir: Path
    max_lora_adapters: int = DEFAULT_MAX_LORA_ADAPTERS
    max_lora_rank: int = 32
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class LocalTinkerServer:
    """A running local Tinker server; a context manager that stops it on exit."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def log_file(self) -> Path:
        return self.settings.state_dir / "server.log"

    def start(self, say=print) -> "LocalTinkerServer":
        """Install the environment if needed, start the server, return once its engine serves.

        Raises UsageError when the port is taken, or when the server exits before it is
        ready (with the end of its log).
        """
        s = self.settings
        python = ensure_environment(say=say)
        if not port_is_free(s.host, s.port):
            raise UsageError(f"port {s.port} on {s.host} is in use (another server?); choose another with --port.")
        s.state_dir.mkdir(parents=True, exist_ok=True)
        ready = s.state_dir / "engine.ready"
        ready.unlink(missing_ok=True)
        backend = {"max_lora_adapters": s.max_lora_adapters, "max_lora_rank": s.max_lora_rank,
                   "train_micro_batch_size": 8, "sample_max_num_sequences": 8}
        command = [
            str(python), str(LAUNCHER), "api", "--ready-file", str(ready), "--host", s.host, "--port", str(s.port),
            "--base-model", s.model.name, "--base-model-checkpoint-path", str(s.model.folder),
            "--backend", "jax", "--backend-config", json.dumps(backend),
            "--database-url", f"sqlite:///{s.state_dir / 'tinker.db'}",
            "--checkpoints-base", str(s.state_dir / "checkpoints"),
            # Sessions of clients that stopped sending heartbeats are never cleaned up: a
            # run resumed hours later finds its checkpoints where it left them.
            "--session-cleanup-interval-sec", "-1",
        ]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=s.state_dir, env=_server_environment(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_until_ready(ready)
        return self

    def _wait_until_ready(self, ready: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not ready.is_file():
            if self.process.poll() is not None:
                raise UsageError(
                    f"the local Tinker server exited (code {self.process.returncode}) before it was ready; "
                    f"the end of its log ({self.log_file}):\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise UsageError(
                    f"the local Tinker server was not ready after {READY_TIMEOUT_SECONDS:g} s; "
                    f"the end of its log ({self.log_file}):\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the API (which stops its engine), then anything left in its process group."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the API leads its own group
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(group, signal.SIGKILL)  # the engine, should the API have died without it
        except ProcessLookupError:
            pass
        self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.is_file():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> "LocalTinkerServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `port` now. Like the server's own socket, ours may
    reuse a port whose last connections are still closing (TIME_WAIT after a restart)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serves_model(base_url: str, model_name: str) -> bool:
    """Whether a Tinker server at `base_url` answers and offers `model_name`."""
    try:
        answer = httpx.get(f"{base_url}/api/v1/get_server_capabilities", timeout=10.0)
        models = [m.get("model_name") for m in answer.json().get("supported_models", [])]
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
    return model_name in models


def _server_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "JAX_PLATFORMS": "cpu",
        # Nothing is fetched from a hub: the model is a local folder.
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        # One thread per process: the API and its engine share the machine with the client.
        "OMP_NUM_THREADS": "1",
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)  # inspect-tinker's own packages must not leak into the server
    return env
