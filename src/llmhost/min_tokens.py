"""vLLM's ``min_tokens`` on an engine that lacks it (llama-server): generate the first ``min_tokens`` with
end-of-sequence suppressed (``ignore_eos``), then let the engine continue the same answer normally.

The continuation is a second engine request: chat continues the partial assistant message (llama-server's
assistant prefill), completion continues the prompt plus the text so far. Both reuse the cached prefix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from llmhost.types import (
    ChatRequest,
    CompletionRequest,
    Done,
    InvalidRequest,
    Message,
    Sampling,
    StreamEvent,
    TextDelta,
    Timings,
    Usage,
)

R = TypeVar("R", ChatRequest, CompletionRequest)


def needed(sampling: Sampling) -> bool:
    if not sampling.min_tokens or sampling.ignore_eos:
        return False
    if sampling.max_tokens is not None and sampling.max_tokens <= sampling.min_tokens:
        return False  # max_tokens ends it first; ignore_eos alone is exact (set below)
    if sampling.grammar or sampling.json_schema is not None or sampling.json_object:
        raise InvalidRequest("min_tokens cannot be combined with structured output here", param="min_tokens")
    return True


def prepare(sampling: Sampling) -> Sampling:
    """With ``max_tokens <= min_tokens`` the whole answer is the EOS-suppressed part."""
    if sampling.min_tokens and sampling.max_tokens is not None and sampling.max_tokens <= sampling.min_tokens:
        return dataclasses.replace(sampling, ignore_eos=True)
    return sampling


async def stream(req: R, open_stream: Callable[[R], AsyncIterator[StreamEvent]]) -> AsyncIterator[StreamEvent]:
    floor = req.sampling.min_tokens or 0
    first = dataclasses.replace(req, sampling=dataclasses.replace(req.sampling, ignore_eos=True, max_tokens=floor))
    text: list[str] = []
    head: Done | None = None
    async for event in open_stream(first):
        if isinstance(event, Done):
            head = event  # the last event: the loop ends by itself
            continue
        if isinstance(event, TextDelta):
            text.append(event.text)
        yield event
    if head is None or head.finish_reason != "length":
        if head is not None:
            yield head
        return
    rest = _continuation(req, "".join(text), head)
    async for event in open_stream(rest):
        yield _merged(head, event) if isinstance(event, Done) else event


def _continuation(req: R, text: str, head: Done) -> R:
    used = head.usage.completion_tokens if head.usage else req.sampling.min_tokens or 0
    remaining = None if req.sampling.max_tokens is None else max(1, req.sampling.max_tokens - used)
    sampling = dataclasses.replace(req.sampling, min_tokens=None, max_tokens=remaining)
    if isinstance(req, ChatRequest):
        return dataclasses.replace(req, messages=[*req.messages, Message("assistant", text)], sampling=sampling)
    assert isinstance(req, CompletionRequest)
    if not isinstance(req.prompt, str):
        raise InvalidRequest("min_tokens needs a text prompt", param="min_tokens")
    return dataclasses.replace(req, prompt=req.prompt + text, sampling=sampling)


def _merged(head: Done, tail: Done) -> Done:
    usage = None
    if head.usage and tail.usage:
        usage = Usage(head.usage.prompt_tokens, head.usage.completion_tokens + tail.usage.completion_tokens)
    timings = None
    if head.timings and tail.timings:
        predicted = (head.timings.predicted_ms or 0) + (tail.timings.predicted_ms or 0)
        count = usage.completion_tokens if usage else 0
        timings = Timings(
            prompt_ms=head.timings.prompt_ms,
            predicted_ms=predicted,
            prompt_per_second=head.timings.prompt_per_second,
            predicted_per_second=count / predicted * 1000 if predicted else None,
        )
    return Done(tail.finish_reason, usage, timings, tail.stop_sequence)
