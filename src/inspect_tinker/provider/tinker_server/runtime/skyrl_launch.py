"""Start SkyRL's Tinker API or its engine. Runs inside the local server's own virtualenv.

This file is executed by the server virtualenv's Python (see ../environment.py), never
imported by inspect-tinker: inspect-tinker's own environment has no SkyRL and must not get one. It only
imports the standard library and what that virtualenv holds.

    python skyrl_launch.py api --ready-file FILE [skyrl.tinker.api arguments]  (inspect-tinker starts this)
    python skyrl_launch.py engine [skyrl.tinker.engine arguments]             (the API starts this)

Adaptations to SkyRL 0.4.0, each needed on Python 3.11 with the tinker 0.38 SDK:
- pydantic refuses `typing.TypedDict` below Python 3.12, which SkyRL declares it needs; the
  `typing_extensions` one is the same thing on 3.11.
- The API refuses to start unless its parent process is `uv run ... -m skyrl.tinker.api`,
  because it starts its engine with that same `uv run` command line. We replace the function
  that builds that command: the engine is this file again, under the same Python.
- The protocol of tinker 0.38 (skyrl_compat.py), wrapped around the API's ASGI app.
- Each process ends when its parent does (Linux's parent-death signal), so a killed
  inspect-tinker never leaves a server or its engine behind.
- The engine creates the `--ready-file` once it holds the model and serves requests: HTTP
  answers long before that, while requests only queue.
- A new adapter's A matrices are drawn as LoRA's standard init, uniform in +-1/sqrt(in_features)
  for each layer (`_standard_lora_a_init`), as the local backend's PEFT draws them. SkyRL means
  to draw them with he_uniform, but draws each adapter's A for all decoder layers at once, from
  the tensor that stacks them (layers x in x rank), so the fan-in it computes is layers x
  in_features: on SmolLM2's 30 layers A came out 0.45x PEFT's scale (std 0.011 against 0.024
  for in_features 576), on the tiny model's 2 layers 1.7x, and the same config learned more
  slowly, or faster, than it does on the local backend (measured in the README's Tinker section).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import typing
from pathlib import Path

import typing_extensions

typing.TypedDict = typing_extensions.TypedDict  # before SkyRL's modules are imported

READY_FILE_VARIABLE = "INSPECT_TINKER_SKYRL_READY_FILE"  # how the API tells its engine
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _end_with_parent() -> None:
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the signal was armed
        sys.exit(1)


def _run_api(argv: list[str]) -> None:
    import uvicorn
    from skyrl.tinker import api
    from skyrl_compat import Tinker038Compat

    api._build_uv_run_cmd_engine = lambda _parent_cmd, config: [
        sys.executable, os.path.abspath(__file__), "engine", *api.config_to_argv(config)
    ]
    # What `python -m skyrl.tinker.api` does in its __main__ block, with the wrapped app.
    parser = argparse.ArgumentParser(prog="skyrl.tinker.api")
    parser.add_argument("--ready-file", required=True)
    api.add_model(parser, api.EngineConfig)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ[READY_FILE_VARIABLE] = args.ready_file  # inherited by the engine
    api.app.state.engine_config = api.EngineConfig.model_validate(
        {k: v for k, v in vars(args).items() if k in api.EngineConfig.model_fields}
    )
    uvicorn.run(
        Tinker038Compat(api.app), host=args.host, port=args.port, log_config=api.get_uvicorn_log_config(),
        backlog=api.SKYRL_HTTP_CONNECTION_LIMIT, timeout_keep_alive=api.HTTP_KEEP_ALIVE_TIMEOUT_SECONDS,
    )


def _standard_lora_a_init():
    """In place of flax's he_uniform, which SkyRL calls only to draw a new adapter's A: uniform in
    +-1/sqrt(in_features), the fan-in read from the layer's own axis (shape[-2]: A is in x rank,
    stacked over layers, and over experts in MoE layers, on the axes before)."""
    import jax

    def init(key, shape, dtype):
        bound = 1.0 / shape[-2] ** 0.5
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _run_engine(argv: list[str]) -> None:
    from flax import nnx
    from skyrl.tinker import engine

    nnx.initializers.he_uniform = _standard_lora_a_init

    ready_file = os.environ.get(READY_FILE_VARIABLE)
    serve = engine.TinkerEngine.run

    def announce_and_serve(self) -> None:
        if ready_file:
            Path(ready_file).write_text(f"{os.getpid()}\n")
        serve(self)

    engine.TinkerEngine.run = announce_and_serve
    sys.argv = ["skyrl.tinker.engine", *argv]
    engine.main()


if __name__ == "__main__":
    _end_with_parent()
    role, *rest = sys.argv[1:]
    {"api": _run_api, "engine": _run_engine}[role](rest)
