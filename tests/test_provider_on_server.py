"""The `tinker` provider against a real Tinker-compatible server, through the real SDK and protocol.

The server is one this suite does not start itself: its URL and model come from
`INSPECT_TINKER_TEST_SERVER_URL` and `INSPECT_TINKER_TEST_SERVER_MODEL` (the local Tinker
server's test suite sets them, or passes its own fixture for `tinker_server`); without them
the tests are skipped. They need the server's tokenizer as a local folder:
`INSPECT_TINKER_TEST_SERVER_TOKENIZER`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import pytest
from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model

pytestmark = pytest.mark.tinker_server


@dataclass(frozen=True)
class Server:
    base_url: str
    model: str
    tokenizer: str


@pytest.fixture
def tinker_server(monkeypatch) -> Server:
    url = os.environ.get("INSPECT_TINKER_TEST_SERVER_URL")
    if not url:
        pytest.skip("no Tinker-compatible server: set INSPECT_TINKER_TEST_SERVER_URL (the local server suite does)")
    monkeypatch.setenv("TINKER_API_KEY", os.environ.get("TINKER_API_KEY", "tml-local-test-key"))
    return Server(url, os.environ["INSPECT_TINKER_TEST_SERVER_MODEL"], os.environ["INSPECT_TINKER_TEST_SERVER_TOKENIZER"])


def test_the_base_model_answers_with_its_stop_reason_and_token_counts(tinker_server):
    model = get_model(f"tinker/{tinker_server.model}", base_url=tinker_server.base_url, backend="tinker",
                      tokenizer=tinker_server.tokenizer, renderer="tokenizer", memoize=False)
    out = asyncio.run(model.generate([ChatMessageUser(content="What is the capital of France?")],
                                     config=GenerateConfig(max_tokens=8, num_choices=2)))
    assert len(out.choices) == 2
    assert all(c.stop_reason in ("stop", "max_tokens") for c in out.choices)
    assert out.usage.input_tokens > 0 and 0 < out.usage.output_tokens <= 16


def test_max_tokens_ends_a_long_answer_as_max_tokens(tinker_server):
    model = get_model(f"tinker/{tinker_server.model}", base_url=tinker_server.base_url, backend="tinker",
                      tokenizer=tinker_server.tokenizer, renderer="tokenizer", memoize=False)
    out = asyncio.run(model.generate([ChatMessageUser(content="Count from one to one hundred in words.")],
                                     config=GenerateConfig(max_tokens=3)))
    assert out.stop_reason == "max_tokens" and out.usage.output_tokens == 3
