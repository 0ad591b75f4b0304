"""Engine supervision seen from outside: cancellation on disconnect, crash restart, mid-stream crash."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import psutil
import pytest

from conftest import DEFAULT_MODEL, LlmhostServer, shutdown_and_check, start_server, wait_dead
from engine_probes import assert_cancelled, busy_slots, slots

pytestmark = pytest.mark.integration

LONG_PROMPT = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
LONG: dict[str, Any] = {
    "model": DEFAULT_MODEL,
    "messages": LONG_PROMPT,
    "max_tokens": 2000,
    "temperature": 0,
    "ignore_eos": True,
}


def read_content_chunks(lines: Iterator[str], count: int) -> None:
    seen = 0
    for line in lines:
        if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line:
            seen += 1
            if seen >= count:
                return
    pytest.fail("the stream ended before it produced content")


# --- disconnect (a fresh server each: a slot left generating must not slow down other tests) ------------


@pytest.fixture
def server(start_llmhost: Callable[..., LlmhostServer]) -> LlmhostServer:
    return start_llmhost("cancel")


def test_client_disconnect_mid_stream_cancels_engine_request(server: LlmhostServer) -> None:
    with (
        httpx.Client(base_url=server.base_url, timeout=60) as client,
        client.stream("POST", "/v1/chat/completions", json={**LONG, "stream": True}) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        read_content_chunks(lines, 5)
        engine = server.engine()
        state = slots(engine)
        deadline = time.monotonic() + 2.0  # /slots can lag a moment behind the stream
        while not any(slot["is_processing"] for slot in state) and time.monotonic() < deadline:
            time.sleep(0.1)
            state = slots(engine)
        if not any(slot["is_processing"] for slot in state):
            rest = "\n".join(line for line in lines if line)[-1500:]
            pytest.fail(f"the engine is idle during the stream: {state}\nrest of the stream: {rest}")
    # leaving the block closed the unread response, and so the connection
    assert_cancelled(engine, "the client went away")


def test_sdk_stream_close_cancels_engine_request(server: LlmhostServer) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="test", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=LONG_PROMPT,
        max_tokens=2000,
        temperature=0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    with stream:
        chunks = iter(stream)
        for _ in range(5):
            next(chunks)
        engine = server.engine()
        assert busy_slots(engine)
    client.close()
    assert_cancelled(engine, "stream.close()")


def test_client_timeout_on_non_streamed_request_cancels_engine_request(server: LlmhostServer) -> None:
    """A non-streamed caller that gives up (timeout, closed socket) must free its slot too."""
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="test", max_retries=0) as client:
        chat_ok(client)
    engine = server.engine()
    with httpx.Client(base_url=server.base_url, timeout=2) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json=LONG)
    assert_cancelled(engine, "the client gave up")


# --- crashes (a server of their own, so a failure here cannot cascade) -----------------------------------


@pytest.fixture(scope="module")
def crash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    running = start_server(tmp_path_factory.mktemp("llmhost-crash"))
    try:
        yield running
    finally:
        shutdown_and_check(running)


@pytest.fixture(scope="module")
def crash_client(crash_server: LlmhostServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{crash_server.base_url}/v1", api_key="test", max_retries=0, timeout=120)
    yield client
    client.close()


def kill_and_wait_reaped(engine: psutil.Process) -> None:
    """SIGKILL the engine and wait until its parent (the service) has reaped it, so it has seen the exit."""
    engine.kill()
    deadline = time.monotonic() + 10
    while psutil.pid_exists(engine.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(engine.pid), "the service did not reap its dead engine"


def chat_ok(client: openai.OpenAI) -> str:
    completion = client.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=8, temperature=0
    )
    content = completion.choices[0].message.content
    assert content
    return content


def test_engine_sigkill_then_next_request_succeeds(crash_server: LlmhostServer, crash_client: openai.OpenAI) -> None:
    chat_ok(crash_client)
    old = crash_server.engine()
    old.kill()
    chat_ok(crash_client)  # the very next request: it may wait for the restart, but it must not fail
    new = crash_server.engine()
    assert new.pid != old.pid
    assert not wait_dead([old], timeout=5)


def test_engine_sigkill_after_reaped_next_request_succeeds(
    crash_server: LlmhostServer, crash_client: openai.OpenAI
) -> None:
    """Same, but the service has certainly seen the exit (the dead engine is gone from the process table)."""
    chat_ok(crash_client)
    old = crash_server.engine()
    kill_and_wait_reaped(old)
    chat_ok(crash_client)
    assert crash_server.engine().pid != old.pid


def test_engine_restart_leaves_exactly_one_engine(crash_server: LlmhostServer, crash_client: openai.OpenAI) -> None:
    """The backoff restart and the on-demand restart must not both start an engine."""
    chat_ok(crash_client)
    old = crash_server.engine()
    kill_and_wait_reaped(old)
    chat_ok(crash_client)
    time.sleep(3)  # longer than the first backoff step (1 s): a second start would have happened by now
    engines = crash_server.engines()
    assert len(engines) == 1, f"engines after a crash restart: {[e.pid for e in engines]}"
    chat_ok(crash_client)
    assert "engine crashed" in crash_server.log()


def test_engine_sigkill_mid_stream_sends_error_event(crash_server: LlmhostServer) -> None:
    chat_ok_client = openai.OpenAI(base_url=f"{crash_server.base_url}/v1", api_key="t", max_retries=0)
    chat_ok(chat_ok_client)
    with (
        httpx.Client(base_url=crash_server.base_url, timeout=60) as client,
        client.stream("POST", "/v1/chat/completions", json={**LONG, "stream": True}) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        read_content_chunks(lines, 3)
        engine = crash_server.engine()
        engine.kill()
        rest = [line for line in lines if line]
    assert rest, "the stream ended without a word after the engine died"
    assert rest[-1] == "data: [DONE]"
    assert rest[-2].startswith("data: {")
    last = json.loads(rest[-2][len("data: ") :])
    assert set(last) == {"error"}, last
    assert set(last["error"]) >= {"message", "type", "param", "code"}
    assert last["error"]["message"]
    assert not any('"finish_reason":"stop"' in line or '"finish_reason":"length"' in line for line in rest)
    chat_ok(chat_ok_client)
    assert crash_server.engine().pid != engine.pid
    chat_ok_client.close()


def test_engine_sigkill_mid_stream_raises_api_error_in_sdk(
    crash_server: LlmhostServer, crash_client: openai.OpenAI
) -> None:
    chat_ok(crash_client)
    stream = crash_client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=LONG_PROMPT,
        max_tokens=2000,
        temperature=0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    received = 0
    with pytest.raises(openai.APIError) as info, stream:
        for _chunk in stream:
            received += 1
            if received == 3:
                crash_server.engine().kill()
    assert not isinstance(info.value, openai.APIConnectionError), "the stream broke instead of carrying an error"
    assert info.value.message
    chat_ok(crash_client)
