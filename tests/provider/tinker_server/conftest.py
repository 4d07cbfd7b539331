"""Local Tinker servers for the tests in this folder (each module is marked `tinker_server`).

One server per model serves these tests: `tiny_tinker_server` here (the tiny random Llama:
every request of the protocol, fast) and `bundled_tinker_server` in bundled/conftest.py
(SmolLM2, for what must really learn), never both at once. Each starts on first use; the first
start of all installs the server's own environment into the user cache (about 100 s and
2.3 GB, once per requirement list), which later sessions and CI on the same machine reuse. A
server stops when its folder's last test has run ("package" scope; each folder's __init__.py
makes it a package), so the rest of the suite gets its memory back. Tests that stop or restart
a server start their own with `start_local_server`.
"""

from __future__ import annotations

import pytest

from tinker_servers import API_KEY, start_local_server


@pytest.fixture(scope="module", autouse=True)
def _tinker_api_key():
    """A key in the environment while this folder's tests run, for the engine in this
    process and the runs it starts; restored afterwards for the rest of the suite."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINKER_API_KEY", API_KEY)
        for name in ("TINKER_BASE_URL", "TINKER_CREDENTIAL_CMD"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="package")
def tiny_tinker_server(tmp_path_factory):
    # Many tests create training runs on it, and a run holds its adapter slot until the
    # server stops: slots are cheap for a model this small.
    server = start_local_server("tiny", tmp_path_factory.mktemp("tiny-server"), max_lora_adapters=64)
    yield server
    server.stop()

