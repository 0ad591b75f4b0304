"""The prompted tool-call path: schema, prompt rewriting and the incremental answer decoder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import orjson
import pytest

from llmhost import tools
from llmhost.types import (
    ChatRequest,
    Done,
    Message,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

WEATHER = Tool(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = Tool(name="get_time", parameters={"type": "object", "properties": {}})


def feed_all(pieces: list[str]) -> tuple[str, list[ToolCallDelta], tools.AnswerDecoder]:
    decoder = tools.AnswerDecoder()
    events: list[StreamEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    events += decoder.finish()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    return text, calls, decoder


def split_every(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_response_text_streams_through_any_chunking(size: int) -> None:
    answer = 'Hi "there"\n\ttab \\ slash / caf\u00e9 \U0001f600 end'
    wire = json.dumps({"response": answer})  # ASCII escapes incl. a surrogate pair for the emoji
    text, calls, decoder = feed_all(split_every(wire, size))
    assert text == answer
    assert calls == []
    assert not decoder.called_tools


def test_response_is_emitted_before_the_json_is_complete() -> None:
    decoder = tools.AnswerDecoder()
    assert decoder.feed('{"response": "Hel') == [TextDelta("Hel")]
    assert decoder.feed("lo") == [TextDelta("lo")]
    assert decoder.feed('"}') == []


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_tool_calls_are_emitted_whole_with_ids(size: int) -> None:
    wire = json.dumps(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]}
    )
    text, calls, decoder = feed_all(split_every(wire, size))
    assert text == ""
    assert [c.index for c in calls] == [0, 1]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert all(c.id and c.id.startswith("call_") for c in calls)
    assert calls[0].id != calls[1].id
    assert decoder.called_tools


def test_arguments_key_named_response_does_not_confuse_the_decoder() -> None:
    wire = json.dumps({"tool_calls": [{"name": "get_weather", "arguments": {"response": "x"}}]})
    text, calls, _ = feed_all(split_every(wire, 4))
    assert text == ""
    assert json.loads(calls[0].arguments) == {"response": "x"}


def test_truncated_tool_json_is_handed_back_as_text() -> None:
    wire = '{"tool_calls": [{"name": "get_weather", "argu'
    text, calls, decoder = feed_all([wire])
    assert calls == []
    assert text == wire
    assert not decoder.called_tools


def test_non_json_output_passes_through_as_text() -> None:
    text, calls, _ = feed_all(["plain ", "words"])
    assert (text, calls) == ("plain words", [])


def test_schema_for_auto_required_and_named_choice() -> None:
    auto = tools.answer_schema([WEATHER, TIME], "auto")
    assert len(auto["oneOf"]) == 2
    assert auto["oneOf"][1]["required"] == ["response"]
    required = tools.answer_schema([WEATHER, TIME], "required")
    names = [c["properties"]["name"]["const"] for c in required["properties"]["tool_calls"]["items"]["anyOf"]]
    assert names == ["get_weather", "get_time"]
    named = tools.answer_schema([WEATHER, TIME], "get_time")
    only = named["properties"]["tool_calls"]["items"]["anyOf"]
    assert [c["properties"]["name"]["const"] for c in only] == ["get_time"]
    assert only[0]["properties"]["arguments"] == TIME.parameters


def test_prompted_request_moves_tools_into_one_system_message() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Weather in Paris?"),
            Message(role="assistant", tool_calls=[ToolCall("call_1", "get_weather", '{"city":"Paris"}')]),
            Message(role="tool", content="sunny", tool_call_id="call_1", name="get_weather"),
        ],
        tools=[WEATHER],
        tool_choice="auto",
    )
    out = tools.prompted_request(req)
    assert out.tools == [] and out.tool_choice == "none"
    assert out.sampling.json_schema == tools.answer_schema([WEATHER], "auto")
    assert [m.role for m in out.messages] == ["system", "user", "assistant", "user"]
    system = out.messages[0].content or ""
    assert system.startswith("Be brief.") and "get_weather" in system
    assert orjson.loads(out.messages[2].content or "") == {
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    }
    assert "sunny" in (out.messages[3].content or "") and "call_1" in (out.messages[3].content or "")
    assert req.tools == [WEATHER], "the original request is not modified"


async def test_tool_events_sets_finish_reason_tool_calls() -> None:
    async def engine() -> AsyncIterator[StreamEvent]:
        yield TextDelta('{"tool_calls": [{"name": "get_time", ')
        yield TextDelta('"arguments": {}}]}')
        yield Done("stop", Usage(10, 5))

    events = [event async for event in tools.tool_events(engine())]
    assert isinstance(events[0], ToolCallDelta) and events[0].name == "get_time"
    assert events[-1] == Done("tool_calls", Usage(10, 5))


async def test_tool_events_keeps_stop_for_a_plain_answer() -> None:
    async def engine() -> AsyncIterator[StreamEvent]:
        yield TextDelta('{"response": "ok"}')
        yield Done("stop")

    events = [event async for event in tools.tool_events(engine())]
    assert events == [TextDelta("ok"), Done("stop")]
