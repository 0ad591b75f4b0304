"""Drill 1: the engine SIGKILLed mid-stream, in the OpenAI, Ollama and TGI dialects back to back on one service.

Each dialect's client gets its own error at the end of the stream, the engine is restarted, the next request
succeeds, and afterwards the service holds no more asyncio tasks than before (a watcher or backoff task per
crash that never ends would show here).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psutil
import pytest
from drill_kit import (
    DIALECTS,
    assert_serves,
    long_stream,
    quiet_runtime,
    runtime_excess,
    settled_runtime,
    stream_error,
)

from conftest import LlmhostServer, wait_dead

pytestmark = pytest.mark.integration

CHUNKS_BEFORE_KILL = 3


def stream_and_kill_engine(server: LlmhostServer, dialect: str) -> tuple[psutil.Process, list[str]]:
    """Read a few chunks of a long stream, SIGKILL the engine, return it and the rest of the stream."""
    call = long_stream(dialect)
    with (
        httpx.Client(base_url=server.base_url, timeout=60) as client,
        client.stream("POST", call.path, json=call.body) as response,
    ):
        assert response.status_code == 200, f"{dialect}: {response.status_code} {response.read()[:300]!r}"
        lines = (line for line in response.iter_lines() if line.strip())
        head = [next(lines) for _ in range(CHUNKS_BEFORE_KILL)]
        assert len(head) == CHUNKS_BEFORE_KILL
        engine = server.engine()
        engine.kill()
        rest = list(lines)
    return engine, rest


def test_drill_1_engine_sigkill_mid_stream_in_every_dialect_back_to_back(
    start_llmhost: Callable[..., LlmhostServer],
) -> None:
    server = start_llmhost("drill1")
    for dialect in DIALECTS:
        assert_serves(server, dialect)
    baseline = quiet_runtime(server)

    for dialect in DIALECTS:
        killed, rest = stream_and_kill_engine(server, dialect)
        assert stream_error(dialect, rest), f"{dialect}: the stream did not end with its error: {rest[-3:]}"
        assert_serves(server, dialect)  # the very next request: it may wait for the restart, it must not fail
        assert server.engine().pid != killed.pid, f"{dialect}: the engine was not restarted"
        assert not wait_dead([killed], timeout=5), f"{dialect}: the killed engine {killed.pid} is still there"

    after = settled_runtime(server, baseline)
    print(f"runtime before the kills {baseline}, after {after}")
    assert not runtime_excess(baseline, after), (
        f"the service grew after 3 engine crashes: {runtime_excess(baseline, after)}"
    )
    assert "engine crashed" in server.log()
