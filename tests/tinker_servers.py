"""Start a local Tinker server for a test (the fixtures in conftest.py use it too)."""

from __future__ import annotations

from pathlib import Path

from inspect_tinker.provider.tinker_server import LocalTinkerServer, ServerSettings, free_port, served_model

API_KEY = "tml-local-test-key"  # the server checks no key; the SDK wants one of this form


def start_local_server(model: str, state_dir: Path, port: int | None = None, **settings) -> LocalTinkerServer:
    """A started local server for `model` (`tiny`, `bundled` or a folder); stop it when done."""
    server = LocalTinkerServer(ServerSettings(served_model(model), port or free_port(), state_dir, **settings))
    return server.start(say=lambda line: None)
