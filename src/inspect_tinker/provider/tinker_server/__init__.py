"""A local Tinker-compatible server, for trying and testing the `tinker` backend without an account.

SkyRL 0.4.0's Tinker API with its JAX backend, on CPU, serving the bundled model or a tiny
one on 127.0.0.1: real training, checkpoints and sampling behind the same `tinker` SDK calls
the managed service answers. It runs in a virtualenv of its own (environment.py), adapted to
the tinker 0.38 protocol by runtime/skyrl_compat.py. `inspect-tinker dev-server` runs one in the
foreground; tests and benchmarks use LocalTinkerServer.
"""

from inspect_tinker.provider.tinker_server.models import ServedModel, served_model
from inspect_tinker.provider.tinker_server.serve import default_state_dir, local_server, serve
from inspect_tinker.provider.tinker_server.server import LocalTinkerServer, ServerSettings, free_port, serves_model

__all__ = [
    "LocalTinkerServer",
    "ServedModel",
    "ServerSettings",
    "default_state_dir",
    "free_port",
    "local_server",
    "serve",
    "served_model",
    "serves_model",
]
