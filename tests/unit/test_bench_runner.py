"""The runner's fallbacks against a server that has no tokenizer, sends no usage, rejects ``ignore_eos`` and
stops early (an httpx mock transport stands in for such a server; real engines are in the integration tests)."""

from __future__ import annotations

import json

import httpx
import pytest

from llmhost.bench.client import Target
from llmhost.bench.runner import BenchConfig, BenchError, BenchEvent, run_benchmark
from llmhost.bench.workload import LengthSpec, Level

TARGET = Target("http://bare.test/v1", "m")


def sse(*events: dict[str, object]) -> bytes:
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def bare_server(request: httpx.Request) -> httpx.Response:
    if request.url.path != "/v1/chat/completions":
        return httpx.Response(404)
    body = json.loads(request.content)
    if "ignore_eos" in body:
        return httpx.Response(400, json={"error": {"message": "unrecognized field ignore_eos"}})
    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}
    words = [{"choices": [{"index": 0, "delta": {"content": f"w{i} "}}]} for i in range(3)]
    stop = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    return httpx.Response(200, content=sse(role, *words, stop), headers={"content-type": "text/event-stream"})


async def test_fallbacks_are_flagged() -> None:
    config = BenchConfig(TARGET, (Level(concurrency=2),), requests=4, warmup=2, lengths=LengthSpec.fixed(40, 8))
    events: list[BenchEvent] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(bare_server)) as client:
        run = await run_benchmark(config, events.append, client=client)
    assert run.flags.ignore_eos == "rejected"  # retried without the field, which then worked
    assert run.flags.input_source == "estimated" and run.flags.tokenizer is None  # no /tokenize, no usage
    assert run.flags.output_estimated
    level = run.levels[0]
    assert (level.completed, level.failed) == (4, 0)
    assert level.output_tokens == 12 and level.output_estimated == 4  # one token per content event
    assert level.input_estimated == 4 and level.input_tokens == 160  # the lengths asked for
    assert level.short_outputs == 4  # 3 of 8 tokens: the server stopped early
    assert [e.kind for e in events][:2] == ["preparing", "warmup"]


async def test_a_dead_target_fails_at_warm_up() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="loading")

    config = BenchConfig(TARGET, (Level(concurrency=1),), requests=1, warmup=1)
    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as client:
        with pytest.raises(BenchError, match="http_503"):
            await run_benchmark(config, client=client)
