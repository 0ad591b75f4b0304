"""Drill 2: 100 clients walk away mid-stream (OpenAI SSE, Ollama NDJSON and TGI SSE, at most 10 at a time, each
after 1 to 3 chunks of a 2000-token generation).

Afterwards no engine slot is still generating, the dashboard lists no active request, the service's tasks,
connections and open files are back to their baseline, the engine generated only a small fraction of what was
asked, and a normal request in every dialect still works.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from drill_kit import (
    DIALECTS,
    active_requests,
    assert_serves,
    long_stream,
    quiet_runtime,
    runtime_excess,
    settled_runtime,
    wait_until,
)

from conftest import DEFAULT_MODEL, LlmhostServer
from engine_probes import tokens_predicted, wait_idle

pytestmark = pytest.mark.integration

CLIENTS = 100
CONCURRENCY = 10
PARALLEL = 4
MAX_TOKENS = 2000
BOUND_S = 90.0
# Tokens one cancelled request may still cost: the chunks read, what was in flight when the client left, and
# the engine noticing the closed connection. Uncancelled, each would generate MAX_TOKENS.
TOKENS_PER_CANCELLED = 40


async def leave_after(client: httpx.AsyncClient, dialect: str, chunks: int) -> int:
    """Open a long stream, read ``chunks`` non-empty lines, then drop the connection; returns the lines read."""
    call = long_stream(dialect, MAX_TOKENS)
    seen = 0
    async with client.stream("POST", call.path, json=call.body) as response:
        assert response.status_code == 200, f"{dialect}: {response.status_code}"
        async for line in response.aiter_lines():
            if line.strip():
                seen += 1
                if seen >= chunks:
                    break
    return seen  # leaving the block closes the unread response, and with it the connection


async def walk_away_storm(base_url: str) -> list[tuple[str, int, int]]:
    """CLIENTS disconnects, CONCURRENCY at a time; each dialect leaves after 1, 2 and 3 chunks in turn."""
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def one(index: int) -> tuple[str, int, int]:
            dialect, wanted = DIALECTS[index % len(DIALECTS)], 1 + (index // len(DIALECTS)) % 3
            async with gate:
                return dialect, wanted, await leave_after(client, dialect, wanted)

        return await asyncio.gather(*(one(index) for index in range(CLIENTS)))


async def test_drill_2_hundred_disconnects_mid_stream_leave_nothing_behind(
    start_llmhost: Callable[..., LlmhostServer],
) -> None:
    server = start_llmhost("drill2", models={DEFAULT_MODEL: {"parallel": PARALLEL, "ctx": 1024, "threads": 1}})
    for dialect in DIALECTS:
        assert_serves(server, dialect)
    engine = server.engine()
    baseline = quiet_runtime(server)
    generated_before = tokens_predicted(engine)

    started = time.monotonic()
    outcomes = await asyncio.wait_for(walk_away_storm(server.base_url), BOUND_S)
    elapsed = time.monotonic() - started
    short = [outcome for outcome in outcomes if outcome[2] < outcome[1]]
    assert not short, f"streams that ended before the client left: {short[:5]}"

    busy = wait_idle(engine)
    assert not busy, f"slots {busy} still generating after {CLIENTS} clients left"
    generated = tokens_predicted(engine) - generated_before
    assert generated < CLIENTS * TOKENS_PER_CANCELLED, f"{generated:.0f} tokens generated: not cancelled"
    assert wait_until(lambda: not active_requests(server), 10), f"still active: {active_requests(server)}"
    after = settled_runtime(server, baseline)
    print(f"{CLIENTS} disconnects in {elapsed:.1f} s, {generated:.0f} tokens; runtime {baseline} -> {after}")
    assert not runtime_excess(baseline, after), f"leaked after the disconnects: {runtime_excess(baseline, after)}"

    for dialect in DIALECTS:
        assert_serves(server, dialect)
    assert server.engine().pid == engine.pid, "the engine was restarted during the drill"
