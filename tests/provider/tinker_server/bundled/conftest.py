"""The bundled model's local Tinker server, for the tests in this folder (what must really learn).

This folder is collected before the tiny server's tests beside it, and its server stops when
its last test has run ("package" scope): the bundled model's engine holds about 13 GB, the tiny
one's about 6 GB, and the two at once with a run beside them leave a 24 GB machine too little.
"""

from __future__ import annotations

import pytest

from tinker_servers import start_local_server


@pytest.fixture(scope="package")
def bundled_tinker_server(tmp_path_factory):
    server = start_local_server("bundled", tmp_path_factory.mktemp("bundled-server"), max_lora_adapters=8)
    yield server
    server.stop()
