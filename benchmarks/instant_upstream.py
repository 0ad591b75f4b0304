"""An instant OpenAI-compatible streamer: a measuring tool for the gateway benchmark, never a stand-in for the
engine in tests. It answers ``/v1/chat/completions`` with ``--chunks`` content chunks (one token each, no delay,
pre-encoded), a usage chunk and ``[DONE]``, so that what a gateway in front of it adds is all that is left.

    python benchmarks/instant_upstream.py --port 18080 --chunks 32
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

MODEL = "instant"
Scope = dict[str, Any]


def sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return f"data: {data}\n\n".encode()


def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-instant",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else [],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def stream_body(chunks: int) -> list[bytes]:
    usage = {"prompt_tokens": 16, "completion_tokens": chunks, "total_tokens": 16 + chunks}
    events = [sse(chunk({"role": "assistant", "content": ""}))]
    events += [sse(chunk({"content": f"t{i} "})) for i in range(chunks)]
    events += [sse(chunk({}, finish="length")), sse(chunk({}, usage=usage)), sse("[DONE]")]
    return events


def whole_body(chunks: int) -> bytes:
    text = "".join(f"t{i} " for i in range(chunks))
    return orjson.dumps(
        {
            "id": "chatcmpl-instant",
            "object": "chat.completion",
            "created": 1,
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 16, "completion_tokens": chunks, "total_tokens": 16 + chunks},
        }
    )


MODELS = orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]})
HEALTH = orjson.dumps({"status": "ok"})


class InstantApp:
    """A raw ASGI app (no framework): the upstream must cost as little as possible."""

    def __init__(self, chunks: int, delay: float = 0.0) -> None:
        self.events = stream_body(chunks)
        self.whole = whole_body(chunks)
        self.delay = delay  # seconds between chunks: 0 is instant, a few ms looks like an engine's decode

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path == "/v1/chat/completions" and scope["method"] == "POST":
            streamed = b'"stream":true' in body.replace(b" ", b"")
            await (self._stream(send) if streamed else self._json(send, self.whole))
        elif path in ("/v1/models", "/models"):
            await self._json(send, MODELS)
        elif path == "/health":
            await self._json(send, HEALTH)
        else:
            await self._json(send, b'{"error":"not found"}', 404)

    async def _json(self, send: Any, body: bytes, status: int = 200) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _stream(self, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in self.events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if self.delay:
                await asyncio.sleep(self.delay)
        await send({"type": "http.response.body", "body": b""})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="pause between chunks (default: none)")
    args = parser.parse_args()
    uvicorn.run(
        InstantApp(args.chunks, args.delay_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
