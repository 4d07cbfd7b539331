"""`inspect-tinker dev-server`: run a local Tinker server in the foreground until told to stop;
and `inspect-tinker demo --local-server`: a server for the length of one command."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from inspect_tinker.provider.base_model import cache_root
from inspect_tinker.provider.tinker_server.models import served_model
from inspect_tinker.provider.tinker_server.server import (
    DEFAULT_MAX_LORA_ADAPTERS, DEFAULT_PORT, LocalTinkerServer, ServerSettings, serves_model,
)


class _Stop(Exception):
    """SIGTERM arrived: stop the server as Ctrl-C does."""


def default_state_dir(model_name: str, port: int) -> Path:
    """Where a server keeps its database and checkpoints unless told otherwise: one folder per
    model and port, so two servers never share a database and a restart finds its checkpoints."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("_")[-60:]
    return cache_root() / "tinker-server" / "state" / f"{slug}-{port}"


def serve(model: str = "bundled", port: int = DEFAULT_PORT, max_lora_adapters: int = DEFAULT_MAX_LORA_ADAPTERS,
          state_dir: Path | None = None, say=print) -> int:
    """Start a local Tinker server for `model` (`bundled`, `tiny` or a model folder) on
    127.0.0.1:`port`, print how to use and stop it, and serve until SIGINT (Ctrl-C) or
    SIGTERM; then stop it and everything it started. Returns the exit code: 0 after a
    requested stop, 1 when the server ended by itself. Raises UsageError for a bad model or
    a taken port."""
    served = served_model(model)
    settings = ServerSettings(served, port, state_dir or default_state_dir(served.name, port),
                              max_lora_adapters=max_lora_adapters)
    server = LocalTinkerServer(settings)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    requested = False
    try:
        say(f"Starting a local Tinker server (SkyRL 0.4.0, JAX on CPU) for {served.name} ...")
        server.start(say=say)
        _print_usage(server, say)
        while server.running():
            time.sleep(1)
        say(f"The server stopped by itself (exit {server.process.returncode}); the end of its log "
            f"({server.log_file}):\n{server.log_tail()}")
        return 1
    except (KeyboardInterrupt, _Stop):
        requested = True
        say("Stopping the local Tinker server ...")
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
        if requested:
            say("Stopped.")


# What the local server does differently from the service and the local backend when it trains
# (docs/tinker.md, "The same training on both backends"; the rest, the launcher aligns).
TRAINS_UNLIKE_THE_SERVICE = (
    "Note: this local server (SkyRL) ignores max_grad_norm (Tinker's grad_clip_norm), which the service and the "
    "local backend apply; otherwise it trains as they do (docs/tinker.md, the same training on both backends)."
)


@contextlib.contextmanager
def local_server(model: str = "bundled", port: int = DEFAULT_PORT, say=print) -> Iterator[ServerSettings]:
    """A local Tinker server for `model` on 127.0.0.1:`port` while the block runs: the one already
    serving that model on the port, else one started now and stopped afterwards. Yields its settings."""
    served = served_model(model)
    settings = ServerSettings(served, port, default_state_dir(served.name, port))
    say(TRAINS_UNLIKE_THE_SERVICE)
    if serves_model(settings.base_url, served.name):
        say(f"Using the local Tinker server already at {settings.base_url}.")
        yield settings
        return
    say(f"Starting a local Tinker server for {served.name} at {settings.base_url} "
        f"(log: {settings.state_dir}/server.log) ...")
    with LocalTinkerServer(settings).start(say=say):
        yield settings


def _raise_stop(signum, frame):
    raise _Stop()


def _print_usage(server: LocalTinkerServer, say) -> None:
    s = server.settings
    say(f"""
Local Tinker server ready.
  base URL:    {s.base_url}
  base_model:  {s.model.name}  (the one model it serves, from {s.model.folder})
  state:       {s.state_dir}  (database, checkpoints, server.log; delete it to start afresh)
  capacity:    {s.max_lora_adapters - 1} training runs at once (--max-lora-adapters), LoRA rank up to {s.max_lora_rank}
Use it:
  inspect-tinker demo --local-server --port {s.port}
  or any run: export TINKER_API_KEY=tml-local (this server checks no key) and set backend: tinker,
  base_model: {s.model.name}, tinker_base_url: {s.base_url}
Stop it: Ctrl-C here, or kill -TERM {os.getpid()}""")
