"""Drill 3: overload at 4x capacity. One slot, a queue of two and a 3-second queue timeout; twelve long requests
(200 tokens each, in the OpenAI, Ollama and TGI dialects) arrive at once.

Every answer is 200, 429 (queue full) or 503 (queue timeout); every 429 and 503 carries Retry-After; a 429 comes
back at once, a 503 right after the queue timeout, a 200 within the bound below; and afterwards the service
still serves.

The bound for a served request: it waited at most ``queue_timeout`` for the slot, then generated 200 tokens,
which take ``T`` seconds when nothing else runs (measured first, on the same engine). It gets twice that
(the shared 2-core machine is noisy) plus a fixed allowance for HTTP and scheduling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from drill_kit import DIALECTS, LONG_PROMPT, active_requests, answer, assert_serves, wait_until

from conftest import DEFAULT_MODEL, LlmhostServer
from engine_probes import wait_idle

pytestmark = pytest.mark.integration

PARALLEL = 1
QUEUE_SIZE = 2
QUEUE_TIMEOUT = 3.0
CAPACITY = PARALLEL + QUEUE_SIZE
FIRED = 4 * CAPACITY
MAX_TOKENS = 200
GENERATION_MARGIN = 2.0
ALLOWANCE_S = 5.0
SHED = {429, 503}


@dataclass(frozen=True)
class Outcome:
    dialect: str
    status: int
    retry_after: str | None
    seconds: float

    def __str__(self) -> str:
        return f"{self.dialect} {self.status} retry-after={self.retry_after} in {self.seconds:.1f} s"


async def timed_request(client: httpx.AsyncClient, dialect: str) -> Outcome:
    call = answer(dialect, MAX_TOKENS, LONG_PROMPT)
    started = time.monotonic()
    response = await client.post(call.path, json=call.body)
    return Outcome(dialect, response.status_code, response.headers.get("retry-after"), time.monotonic() - started)


async def generation_seconds(base_url: str) -> float:
    """How long one 200-token answer takes on an otherwise idle engine (the second of two: the first loads)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        for _ in range(2):
            outcome = await timed_request(client, "openai")
            assert outcome.status == 200, outcome
    return outcome.seconds


async def burst(base_url: str, timeout: float) -> list[Outcome]:
    limits = httpx.Limits(max_connections=FIRED, max_keepalive_connections=FIRED)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        return await asyncio.gather(*(timed_request(client, DIALECTS[i % len(DIALECTS)]) for i in range(FIRED)))


def overload_problems(outcomes: list[Outcome], bound: float) -> list[str]:
    """Every way the burst's answers break the drill's rules, one line each."""
    statuses = [outcome.status for outcome in outcomes]
    problems = [f"unexpected status: {o}" for o in outcomes if o.status not in {200, *SHED}]
    if statuses.count(200) < PARALLEL:
        problems.append("no request was served")
    if statuses.count(429) < FIRED - CAPACITY:
        problems.append(
            f"only {statuses.count(429)} of {FIRED} got 429 (queue full): the bound of {PARALLEL} running + "
            f"{QUEUE_SIZE} queued was not enforced"
        )
    problems += [f"shed without Retry-After >= 1: {o}" for o in outcomes if o.status in SHED and not _retry_after_ok(o)]
    problems += [f"a 429 that waited: {o}" for o in outcomes if o.status == 429 and o.seconds >= QUEUE_TIMEOUT]
    problems += [
        f"a 503 past the queue timeout: {o}" for o in outcomes if o.status == 503 and o.seconds >= QUEUE_TIMEOUT + 2
    ]
    problems += [f"longer than the {bound:.1f} s bound: {o}" for o in outcomes if o.seconds >= bound]
    return problems


def _retry_after_ok(outcome: Outcome) -> bool:
    value = outcome.retry_after or ""
    return value.isdigit() and int(value) >= 1


async def test_drill_3_overload_at_four_times_capacity_sheds_with_retry_after(
    start_llmhost: Callable[..., LlmhostServer],
) -> None:
    server = start_llmhost(
        "drill3",
        models={DEFAULT_MODEL: {"parallel": PARALLEL, "ctx": 2048, "threads": 1}},
        scheduler={"queue_size": QUEUE_SIZE, "queue_timeout": QUEUE_TIMEOUT},
    )
    generation = await generation_seconds(server.base_url)
    bound = QUEUE_TIMEOUT + GENERATION_MARGIN * generation + ALLOWANCE_S

    outcomes = await burst(server.base_url, timeout=bound + 10)
    report = "\n".join(str(outcome) for outcome in outcomes)
    print(f"one 200-token answer: {generation:.1f} s; bound {bound:.1f} s\n{report}")

    problems = overload_problems(outcomes, bound)
    assert not problems, "\n".join(problems) + f"\nall answers:\n{report}"

    engine = server.engine()
    assert not wait_idle(engine), "the slot is still busy after the burst"
    assert wait_until(lambda: not active_requests(server), 10), f"still active: {active_requests(server)}"
    for dialect in DIALECTS:
        assert_serves(server, dialect)
