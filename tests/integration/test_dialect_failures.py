"""Failures mid-stream in the TGI dialect (OpenAI and Ollama have theirs in their own modules): an engine
killed mid-stream reaches the client as TGI's error event, and a client that leaves cancels the generation."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
import text_generation
from text_generation.errors import GenerationError

from conftest import LlmhostServer, shutdown_and_check, start_server
from engine_probes import assert_cancelled

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning"),
]

LONG = {"inputs": "Once upon a time", "parameters": {"max_new_tokens": 2000}}


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    """A service of its own: these tests kill its engine."""
    running = start_server(tmp_path_factory.mktemp("dialect-failures"))
    try:
        yield running
    finally:
        shutdown_and_check(running)


def generate_ok(server: LlmhostServer) -> None:
    answer = httpx.post(f"{server.base_url}/generate", json={"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
    assert answer.status_code == 200 and answer.json()["generated_text"]


def test_tgi_engine_killed_mid_stream_sends_a_generation_error_event(fragile: LlmhostServer) -> None:
    generate_ok(fragile)
    with (
        httpx.Client(base_url=fragile.base_url, timeout=60) as client,
        client.stream("POST", "/generate_stream", json=LONG) as response,
    ):
        lines = (line for line in response.iter_lines() if line)
        for _ in range(3):
            assert next(lines).startswith("data:{")
        fragile.engine().kill()
        rest = list(lines)
    assert rest and rest[-1].startswith("data:{"), rest[-3:]
    last = orjson.loads(rest[-1][len("data:") :])
    assert last["error_type"] == "generation" and last["error"], last
    assert not any("[DONE]" in line for line in rest)
    generate_ok(fragile)


def test_tgi_client_raises_on_an_engine_killed_mid_stream(fragile: LlmhostServer) -> None:
    client = text_generation.Client(fragile.base_url, timeout=60)
    with pytest.raises(GenerationError):
        for count, _response in enumerate(client.generate_stream("Once upon a time", max_new_tokens=2000)):
            if count == 3:
                fragile.engine().kill()
    generate_ok(fragile)


def test_checklist_30_tgi_client_disconnect_cancels_generation(fragile: LlmhostServer) -> None:
    generate_ok(fragile)
    with (
        httpx.Client(base_url=fragile.base_url, timeout=60) as client,
        client.stream("POST", "/generate_stream", json=LONG) as response,
    ):
        lines = (line for line in response.iter_lines() if line)
        for _ in range(5):
            next(lines)
        engine = fragile.engine()
    assert_cancelled(engine, "the TGI client went away")
    generate_ok(fragile)
