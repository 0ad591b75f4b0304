"""Tool calls with the real small model, which has no native tool support: prompted and schema-constrained."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from conftest import DEFAULT_MODEL

pytestmark = pytest.mark.integration

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_required_tool_call_non_streamed(openai_client: openai.OpenAI) -> None:
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=ASK,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        max_tokens=64,
        temperature=0,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) >= 1
    assert calls[0].function.name == "get_weather"
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)
    assert calls[0].id.startswith("call_")


def test_streamed_tool_call_accumulates_without_doubling(openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(
        model=DEFAULT_MODEL,
        messages=ASK,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=64,
        temperature=0,
    ) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    deltas = [call for c in chunks for ch in c.choices for call in (ch.delta.tool_calls or [])]
    assert all(isinstance(d.index, int) for d in deltas)
    assert sum(1 for d in deltas if d.id) == len(final.choices[0].message.tool_calls or [])
    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather", "name must not be repeated (getget)"
    assert json.loads(call.function.arguments)["city"]
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_result_round_trip_is_accepted(openai_client: openai.OpenAI) -> None:
    first = openai_client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=ASK,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        max_tokens=64,
        temperature=0,
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    messages: Any = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature_c": 21, "sky": "clear"}'},
    ]
    second = openai_client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice="none",
        max_tokens=24,
        temperature=0,
    )
    assert second.choices[0].message.content
    assert second.choices[0].finish_reason in ("stop", "length")


def test_tool_choice_naming_an_unknown_tool_is_400(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=ASK,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "nope"}},
            max_tokens=8,
        )
    assert caught.value.body["param"] == "tool_choice"  # type: ignore[index]
