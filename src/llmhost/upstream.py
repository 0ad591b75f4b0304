"""UpstreamClient: streams internal requests to an OpenAI-compatible server (llama-server, later remote
providers) and yields internal events. One httpx pool per upstream, explicit timeouts, nothing buffered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from llmhost.protocols import openai
from llmhost.types import (
    ChatRequest,
    CompletionRequest,
    Embeddings,
    EmbedRequest,
    EngineFailed,
    EngineUnavailable,
    InvalidRequest,
    LlmhostError,
    StreamEvent,
)


class UpstreamClient:
    def __init__(
        self,
        base_url: str,
        *,
        request_timeout: float,
        connect_timeout: float = 5.0,
        max_connections: int = 64,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers=headers,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_json(self, path: str, timeout: float = 5.0) -> Any:
        response = await self._client.get(path, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def stream_chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        return self._stream("/v1/chat/completions", openai.chat_to_wire(req))

    def stream_completion(self, req: CompletionRequest) -> AsyncIterator[StreamEvent]:
        return self._stream("/v1/completions", openai.completion_to_wire(req))

    async def embed(self, req: EmbedRequest) -> Embeddings:
        """One input per upstream call, so a vector never depends on its batch neighbours."""
        vectors: list[list[float]] = []
        tokens = 0
        for item in req.inputs:
            body = {"model": req.model, "input": item, "encoding_format": "float"}
            payload = await self.post_json("/v1/embeddings", body)
            vectors.append(payload["data"][0]["embedding"])
            tokens += int((payload.get("usage") or {}).get("prompt_tokens", 0))
        return Embeddings(vectors=vectors, prompt_tokens=tokens)

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        response = await self._send("POST", path, body)
        return orjson.loads(response.content)

    async def _stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        response = await self._send("POST", path, body, stream=True)
        parser = openai.UpstreamChunkParser()
        try:
            async for data in sse_data(response):
                if data == b"[DONE]":
                    break
                for event in parser.feed(orjson.loads(data)):
                    yield event
        except openai.UpstreamError as exc:
            raise EngineFailed(f"engine error: {exc}") from exc
        except (httpx.TransportError, orjson.JSONDecodeError) as exc:
            raise EngineFailed(f"the engine stopped mid-stream ({type(exc).__name__})") from exc
        finally:
            await response.aclose()
        yield parser.done()

    async def _send(self, method: str, path: str, body: dict[str, Any], stream: bool = False) -> httpx.Response:
        """Send; retry once on a connection the server closed before answering (a llama-server quirk)."""
        content = orjson.dumps(body)
        headers = {"content-type": "application/json"}
        for attempt in (1, 2):
            request = self._client.build_request(method, path, content=content, headers=headers)
            try:
                response = await self._client.send(request, stream=True)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt == 2:
                    raise EngineUnavailable(
                        f"the engine closed the connection twice ({type(exc).__name__})", retry_after=1
                    ) from None
                continue
            except httpx.TimeoutException as exc:
                raise EngineFailed("the engine timed out") from exc
            except httpx.TransportError as exc:
                raise EngineUnavailable(f"the engine is not reachable ({type(exc).__name__})", retry_after=2) from exc
            if response.status_code >= 400:
                raise await _status_error(response)
            if not stream:
                await response.aread()
            return response
        raise AssertionError("unreachable")


async def sse_data(response: httpx.Response) -> AsyncIterator[bytes]:
    """The payload of each ``data:`` line, as bytes (cheaper than httpx's text line decoder)."""
    pending = b""
    async for raw in response.aiter_bytes():
        pending += raw
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                yield line[5:].strip()
    if pending.startswith(b"data:"):
        yield pending[5:].strip()


async def _status_error(response: httpx.Response) -> LlmhostError:
    raw = await response.aread()
    await response.aclose()
    try:
        error = orjson.loads(raw).get("error", {})
        message = error.get("message") if isinstance(error, dict) else str(error)
    except (orjson.JSONDecodeError, AttributeError):
        message = raw.decode("utf-8", "replace")[:500]
    message = message or f"HTTP {response.status_code}"
    if response.status_code in (400, 422):
        code = "context_length_exceeded" if "context" in message.lower() else None
        return InvalidRequest(message, code=code)
    if response.status_code == 503:
        return EngineUnavailable(f"engine busy: {message}", retry_after=1)
    return EngineFailed(f"engine answered {response.status_code}: {message}")
