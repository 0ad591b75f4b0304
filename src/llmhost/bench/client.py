"""The target of a benchmark and one streamed request against it, timed per anchors-perf.md §1.8.

SSE is parsed here with orjson (no SDK): on a small machine the load generator's CPU is taken from the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from llmhost.bench.records import RequestRecord

Api = Literal["chat", "completions"]
SSE_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


@dataclass(frozen=True, slots=True)
class Target:
    """An OpenAI-compatible server: ``base_url`` with or without ``/v1`` (llmhost, llama-server, vLLM, ...)."""

    base_url: str
    model: str
    api: Api = "chat"
    api_key: str | None = None

    @property
    def root(self) -> str:
        """The server root, where llama-server and vLLM serve /tokenize."""
        return self.base_url.rstrip("/").removesuffix("/v1")

    @property
    def endpoint(self) -> str:
        return f"{self.root}/v1/chat/completions" if self.api == "chat" else f"{self.root}/v1/completions"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def to_dict(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "api": self.api}  # never the key


def request_body(target: Target, prompt: str, max_tokens: int, ignore_eos: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": target.model,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if target.api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if ignore_eos:
        body["ignore_eos"] = True  # llama-server and vLLM accept it as an extra field
    return body


def http_client(target: Target, concurrency: int, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=10.0),
        limits=httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4),
        headers=target.headers(),
    )


async def stream_request(
    client: httpx.AsyncClient, target: Target, body: dict[str, Any], record: RequestRecord
) -> RequestRecord:
    """Send ``body`` and fill ``record`` (``t0`` is set here, just before the request is written)."""
    content = orjson.dumps(body)
    record.t0 = time.perf_counter()
    try:
        async with client.stream("POST", target.endpoint, content=content, headers=SSE_HEADERS) as response:
            record.status = response.status_code
            if response.status_code != 200:
                raw = await response.aread()
                detail = raw[:300].decode("utf-8", "replace")
                return record.fail(f"http_{response.status_code}", detail, time.perf_counter())
            return await _read_events(response, record)
    except httpx.TimeoutException as exc:
        return record.fail("timeout", f"{type(exc).__name__}: {exc}", time.perf_counter())
    except httpx.ConnectError as exc:
        return record.fail("connect", f"{type(exc).__name__}: {exc}", time.perf_counter())
    except httpx.HTTPError as exc:
        return record.fail("transport", f"{type(exc).__name__}: {exc}", time.perf_counter())


async def _read_events(response: httpx.Response, record: RequestRecord) -> RequestRecord:
    parts: list[str] = []
    done = False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        now = time.perf_counter()
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return record.fail("stream_error", f"not JSON: {data[:200]}", now)
        if event.get("error"):
            return record.fail("stream_error", f"error event: {str(event['error'])[:200]}", now)
        _take_event(event, record, parts, now)
    record.end = time.perf_counter()
    record.text = "".join(parts)
    if not done:
        return record.fail("incomplete", "stream ended without [DONE]", record.end)
    record.tokens_estimated = record.completion_tokens is None
    record.input_estimated = record.prompt_tokens is None
    return record


def _take_event(event: dict[str, Any], record: RequestRecord, parts: list[str], now: float) -> None:
    usage = event.get("usage")
    if usage:
        record.completion_tokens = usage.get("completion_tokens")
        record.prompt_tokens = usage.get("prompt_tokens")
    for choice in event.get("choices") or ():
        text = _choice_text(choice)
        if text:
            if record.first is None:
                record.first = now
            record.last = now
            record.chunk_times.append(now)
            parts.append(text)
        if choice.get("finish_reason"):
            record.finish_reason = choice["finish_reason"]


def _choice_text(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    if delta is None:
        return str(choice.get("text") or "")  # completions
    return str(delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning") or "")


async def list_models(client: httpx.AsyncClient, target: Target) -> list[str]:
    response = await client.get(f"{target.root}/v1/models", timeout=10.0)
    response.raise_for_status()
    return [str(model["id"]) for model in response.json().get("data", [])]
