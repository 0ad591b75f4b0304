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


def test_checklist_05_stream_helper_tool_call_single_id_unrepeated_name_json_arguments(
    openai_client: openai.OpenAI,
) -> None:
    """§7.5 (rule 2): the SDK helper concatenates tool-call fields per ``index``, so ``id``, ``type`` and ``name``
    must come once (else "call_1call_1", "getget"); the accumulated arguments parse as JSON; finish is tool_calls."""
    with openai_client.chat.completions.stream(
        model=DEFAULT_MODEL,
        messages=ASK,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=64,
        temperature=0,
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    chunks = [event.chunk for event in events if event.type == "chunk"]
    deltas = [call for c in chunks for ch in c.choices for call in (ch.delta.tool_calls or [])]
    assert deltas and all(isinstance(d.index, int) for d in deltas)
    assert {d.index for d in deltas} == {0}
    assert [d.id for d in deltas if d.id] == [deltas[0].id], "the id must come in the first delta only"
    assert [d.type for d in deltas if d.type] == ["function"]
    assert [d.function.name for d in deltas if d.function and d.function.name] == ["get_weather"]

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    assert calls[0].id == deltas[0].id and calls[0].id.startswith("call_")
    assert calls[0].function.name == "get_weather", "name must not be repeated (getget)"
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)
    done = [event for event in events if event.type == "tool_calls.function.arguments.done"]
    assert [(event.name, event.arguments) for event in done] == [("get_weather", calls[0].function.arguments)]


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
