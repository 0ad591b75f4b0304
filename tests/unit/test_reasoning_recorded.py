"""Reasoning a thinking model's llama-server streams as ``reasoning_content`` deltas (the shape llama.cpp
sends with --reasoning-format deepseek), through the upstream parser into every dialect. The small test
model cannot think, so this stream is recorded; the translators must not depend on the model."""

from __future__ import annotations

import json
from pathlib import Path

from llmhost.protocols import ollama, openai
from llmhost.types import Done, ReasoningDelta, StreamEvent, TextDelta

RECORDED = Path(__file__).parent / "data" / "llamacpp_reasoning_stream.sse"


def recorded_events() -> list[StreamEvent]:
    parser = openai.UpstreamChunkParser()
    events: list[StreamEvent] = []
    for line in RECORDED.read_text().splitlines():
        data = line.removeprefix("data: ")
        if line.startswith("data: ") and data != "[DONE]":
            events.extend(parser.feed(json.loads(data)))
    return [*events, parser.done()]


def test_parser_keeps_reasoning_apart_from_the_answer() -> None:
    events = recorded_events()
    assert [type(e) for e in events] == [ReasoningDelta, ReasoningDelta, TextDelta, TextDelta, Done]
    done = events[-1]
    assert isinstance(done, Done) and done.usage and done.usage.completion_tokens == 6


def test_openai_stream_carries_both_reasoning_names() -> None:
    stream = openai.ChatStream("qwen3", include_usage=False)
    raw = b"".join(stream.event(e) for e in recorded_events()).decode()
    records = [json.loads(r[6:]) for r in raw.split("\n\n") if r.startswith("data: {")]
    deltas = [r["choices"][0]["delta"] for r in records if r.get("choices")]
    thinking = [d for d in deltas if "reasoning" in d]
    assert [d["reasoning"] for d in thinking] == ["The user", " greets me."]
    assert all(d["reasoning_content"] == d["reasoning"] for d in thinking)
    assert "".join(d.get("content") or "" for d in deltas) == "Hello!"


def test_openai_whole_message_carries_both_reasoning_names() -> None:
    acc = openai.Accumulator()
    for event in recorded_events():
        acc.add(event)
    message = openai.render_chat("qwen3", acc)["choices"][0]["message"]
    assert message["reasoning_content"] == message["reasoning"] == "The user greets me."
    assert message["content"] == "Hello!"


def test_ollama_stream_puts_reasoning_in_message_thinking() -> None:
    stream = ollama.OllamaStream("qwen3", "chat", started=0.0)
    raw = b"".join(part for e in recorded_events() if (part := stream.event(e)))
    objects = [json.loads(line) for line in raw.decode().splitlines()]
    assert "".join(o["message"].get("thinking", "") for o in objects) == "The user greets me."
    assert "".join(o["message"]["content"] for o in objects) == "Hello!"
    assert objects[-1]["done"] and objects[-1]["eval_count"] == 6 and objects[-1]["eval_duration"] == 40_000_000
