"""Golden tests for the OpenAI translator (protocols/openai.py): pure functions, no I/O.

The wire contract is ../shared/reference/api-compat.md §0 and §2.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest

from llmhost.protocols.openai import (
    SSE_DONE,
    Accumulator,
    ChatStream,
    CompletionStream,
    UpstreamChunkParser,
    UpstreamError,
    chat_to_wire,
    completion_to_wire,
    error_body,
    parse_chat,
    parse_completion,
    parse_embeddings,
    render_chat,
    render_completion,
    render_embeddings,
)
from llmhost.types import (
    ChatRequest,
    CompletionRequest,
    Done,
    Embeddings,
    EmbedRequest,
    EngineUnavailable,
    InvalidRequest,
    Message,
    ModelNotFound,
    ReasoningDelta,
    Sampling,
    TextDelta,
    Timings,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

USER_HI = {"role": "user", "content": "hi"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER_HI], **fields}


def records(stream: bytes) -> list[bytes]:
    """Split an SSE byte stream into records, checking the framing of each."""
    assert stream.endswith(b"\n\n")
    parts = stream[:-2].split(b"\n\n")
    for part in parts:
        assert part.startswith(b"data: "), part
        assert b"\n" not in part, part
    return [part[len(b"data: ") :] for part in parts]


# parse_chat -----------------------------------------------------------------------------------


def test_parse_chat_minimal_golden() -> None:
    assert parse_chat(chat()) == ChatRequest(
        model="m",
        messages=[Message(role="user", content="hi")],
        sampling=Sampling(),
        stream=False,
        tools=[],
        tool_choice="none",
        include_usage=False,
    )


def test_parse_chat_full_golden() -> None:
    body = {
        "model": "org/m:7b",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "image_url", "image_url": "https://x/y.png"},
                ],
                "name": "bob",
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "thinking",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "content": "ok", "reasoning": "newer vLLM name"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 5,
        "max_completion_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "stop": "END",
        "seed": 42,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "repetition_penalty": 1.1,
        "logit_bias": {"15": -100},
        "min_tokens": 2,
        "ignore_eos": True,
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        # accepted and ignored
        "user": "u",
        "metadata": {"a": "b"},
        "parallel_tool_calls": True,
        "logprobs": False,
    }
    assert parse_chat(body) == ChatRequest(
        model="org/m:7b",
        messages=[
            Message(role="system", content="be brief"),
            Message(role="system", content="a\nb"),
            Message(
                role="user",
                content="what is this?",
                name="bob",
                images=["data:image/png;base64,AAAA", "https://x/y.png"],
            ),
            Message(
                role="assistant",
                content=None,
                reasoning="thinking",
                tool_calls=[
                    ToolCall(id="call_1", name="get_weather", arguments="{}"),
                    ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
                ],
            ),
            Message(role="tool", content="sunny", tool_call_id="call_1"),
            Message(role="assistant", content="ok", reasoning="newer vLLM name"),
        ],
        sampling=Sampling(
            max_tokens=7,
            temperature=0.5,
            top_p=0.9,
            top_k=40,
            min_p=0.05,
            stop=["END"],
            seed=42,
            presence_penalty=0.1,
            frequency_penalty=0.2,
            repeat_penalty=1.1,
            logit_bias={"15": -100.0},
            min_tokens=2,
            ignore_eos=True,
        ),
        stream=True,
        tools=[
            Tool(
                name="get_weather",
                description="Weather for a city",
                parameters=WEATHER_TOOL["function"]["parameters"],
            )
        ],
        tool_choice="required",
        include_usage=True,
    )


def test_developer_role_becomes_system() -> None:
    req = parse_chat(chat(messages=[{"role": "developer", "content": "x"}, USER_HI]))
    assert [m.role for m in req.messages] == ["system", "user"]


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_on_input_messages_is_accepted(key: str) -> None:
    messages = [USER_HI, {"role": "assistant", "content": "a", key: "why"}, USER_HI]
    assert parse_chat(chat(messages=messages)).messages[1].reasoning == "why"


def test_max_completion_tokens_preferred_over_max_tokens() -> None:
    assert parse_chat(chat(max_tokens=5, max_completion_tokens=9)).sampling.max_tokens == 9
    assert parse_chat(chat(max_tokens=5)).sampling.max_tokens == 5
    assert parse_chat(chat(max_completion_tokens=9)).sampling.max_tokens == 9
    assert parse_chat(chat()).sampling.max_tokens is None


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("x", ["x"]), (["a", "b"], ["a", "b"]), (None, []), ([], [])],
)
def test_stop_becomes_a_list(stop: Any, expected: list[str]) -> None:
    assert parse_chat(chat(stop=stop)).sampling.stop == expected


def test_tools_default_choice() -> None:
    assert parse_chat(chat(tools=[WEATHER_TOOL])).tool_choice == "auto"
    assert parse_chat(chat()).tool_choice == "none"
    assert parse_chat(chat(tool_choice="none")).tool_choice == "none"
    assert parse_chat(chat(tools=[WEATHER_TOOL], tool_choice="none")).tool_choice == "none"


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    req = parse_chat(chat(tools=[{"type": "function", "function": {"name": "ping"}}]))
    assert req.tools == [Tool(name="ping", description="", parameters={"type": "object", "properties": {}})]


def test_named_tool_choice() -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    assert parse_chat(chat(tools=[WEATHER_TOOL], tool_choice=choice)).tool_choice == "get_weather"


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        {"tools": [WEATHER_TOOL], "tool_choice": "sometimes"},
        {"tool_choice": "required"},
        {"tool_choice": "auto"},
    ],
    ids=["named-not-in-tools", "named-without-tools", "bad-string", "required-no-tools", "auto-no-tools"],
)
def test_invalid_tool_choice(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat(chat(**fields))
    assert info.value.param == "tool_choice"
    assert info.value.status == 400


def test_stream_options_without_stream_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="stream=True") as info:
        parse_chat(chat(stream_options={"include_usage": True}))
    assert info.value.param == "stream_options"
    with pytest.raises(InvalidRequest):
        parse_chat(chat(stream=False, stream_options={"include_usage": True}))


def test_include_usage_only_when_asked() -> None:
    assert parse_chat(chat(stream=True)).include_usage is False
    assert parse_chat(chat(stream=True, stream_options={})).include_usage is False
    assert parse_chat(chat(stream=True, stream_options={"include_usage": True})).include_usage is True


def test_response_format_json_object() -> None:
    sampling = parse_chat(chat(response_format={"type": "json_object"})).sampling
    assert sampling.json_object is True
    assert sampling.json_schema is None


def test_response_format_text_is_a_no_op() -> None:
    sampling = parse_chat(chat(response_format={"type": "text"})).sampling
    assert (sampling.json_object, sampling.json_schema) == (False, None)


def test_response_format_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    sampling = parse_chat(chat(response_format=fmt)).sampling
    assert sampling.json_schema == schema
    assert sampling.json_object is False


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": "x"},
        {"type": "json_schema", "json_schema": {"name": "x", "schema": "x"}},
        {"type": "yaml"},
    ],
)
def test_bad_response_format(fmt: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat(chat(response_format=fmt))
    assert info.value.param == "response_format"


SCHEMA = {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}


@pytest.mark.parametrize(
    "fields",
    [
        {"guided_json": SCHEMA},
        {"guided_json": orjson.dumps(SCHEMA).decode()},
        {"structured_outputs": {"json": SCHEMA}},
        {"structured_outputs": {"json": orjson.dumps(SCHEMA).decode()}},
    ],
    ids=["guided_json", "guided_json-string", "structured_outputs", "structured_outputs-string"],
)
def test_vllm_structured_outputs(fields: dict[str, Any]) -> None:
    assert parse_chat(chat(**fields)).sampling.json_schema == SCHEMA


def test_guided_json_invalid_json_text() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat(chat(guided_json="{not json"))
    assert info.value.param == "guided_json"


def test_unknown_content_part_is_rejected() -> None:
    messages = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]
    with pytest.raises(InvalidRequest, match="input_audio"):
        parse_chat(chat(messages=messages))


def test_tool_message_needs_tool_call_id() -> None:
    with pytest.raises(InvalidRequest, match="tool_call_id"):
        parse_chat(chat(messages=[USER_HI, {"role": "tool", "content": "x"}]))


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": -1}, "max_completion_tokens"),
        ({"n": 2}, "n"),
        ({"stream": "maybe"}, "stream"),
        ({"tools": "x"}, "tools"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools.0.function.name"),
        ({"response_format": "json"}, "response_format"),
        ({"logit_bias": {"1": "x"}}, "logit_bias.1"),
    ],
)
def test_wrong_types_name_the_field(fields: dict[str, Any], param: str) -> None:
    body = {**chat(), **fields}
    with pytest.raises(InvalidRequest) as info:
        parse_chat(body)
    assert info.value.param == param
    assert info.value.message.startswith(param + ":")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"stop": 5}, "stop"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"tool_choice": 5}, "tool_choice"),
        ({"guided_json": 5}, "guided_json"),
    ],
    ids=["stop", "content", "tool_choice", "guided_json"],
)
def test_wrong_types_of_union_fields_name_the_field(fields: dict[str, Any], param: str) -> None:
    """Known bug: for a field typed as a union, pydantic appends the member tag to ``loc`` and
    ``_validate`` copies it into ``param`` (``stop.str``, ``messages.0.content.str``,
    ``guided_json.dict[str,any]``). ``param`` must name the request field only."""
    with pytest.raises(InvalidRequest) as info:
        parse_chat({**chat(), **fields})
    assert info.value.param == param


@pytest.mark.parametrize("body", [None, [], "x", 1])
def test_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_chat(body)


# parse_completion / parse_embeddings -----------------------------------------------------------


def test_parse_completion_golden() -> None:
    assert parse_completion({"model": "m", "prompt": "Once"}) == CompletionRequest(
        model="m", prompt="Once", sampling=Sampling(max_tokens=16), stream=False, include_usage=False, echo=False
    )


def test_parse_completion_keeps_explicit_max_tokens() -> None:
    assert parse_completion({"model": "m", "prompt": "x", "max_tokens": 3}).sampling.max_tokens == 3


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [(["only"], "only"), ([1, 2, 3], [1, 2, 3]), ([[4, 5]], [4, 5])],
)
def test_parse_completion_prompt_shapes(prompt: Any, expected: Any) -> None:
    assert parse_completion({"model": "m", "prompt": prompt}).prompt == expected


def test_parse_completion_rejects_many_prompts() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_completion({"model": "m", "prompt": ["a", "b"]})
    assert info.value.param == "prompt"


def test_parse_completion_stream_options() -> None:
    req = parse_completion({"model": "m", "prompt": "x", "stream": True, "stream_options": {"include_usage": True}})
    assert (req.stream, req.include_usage) == (True, True)
    with pytest.raises(InvalidRequest):
        parse_completion({"model": "m", "prompt": "x", "stream_options": {"include_usage": True}})


@pytest.mark.parametrize(
    ("inp", "inputs"),
    [
        ("hello", ["hello"]),
        (["a", "b"], ["a", "b"]),
        ([1, 2, 3], [[1, 2, 3]]),
        ([[1, 2], [3]], [[1, 2], [3]]),
    ],
)
def test_parse_embeddings_inputs(inp: Any, inputs: Any) -> None:
    assert parse_embeddings({"model": "e", "input": inp}) == (EmbedRequest(model="e", inputs=inputs), "float")


def test_parse_embeddings_base64() -> None:
    assert parse_embeddings({"model": "e", "input": "x", "encoding_format": "base64"})[1] == "base64"


@pytest.mark.parametrize("inp", ["", [], [""], ["a", ""], [[]]])
def test_parse_embeddings_empty_input(inp: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_embeddings({"model": "e", "input": inp})
    assert info.value.param == "input"


def test_parse_embeddings_bad_encoding() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_embeddings({"model": "e", "input": "x", "encoding_format": "binary"})
    assert info.value.param == "encoding_format"


# ChatStream ------------------------------------------------------------------------------------


def test_chat_stream_exact_bytes() -> None:
    stream = ChatStream("m", include_usage=True)
    out = b"".join(
        [
            stream.first(),
            stream.event(ReasoningDelta("Let me")),
            stream.event(TextDelta("Hel")),
            stream.event(TextDelta("lo")),
            stream.event(Done("stop", Usage(9, 2, 0))),
        ]
    )
    head = f'"id":"{stream.id}","object":"chat.completion.chunk","created":{stream.created},"model":"m"'
    tail = ',"logprobs":null,"finish_reason":null}]}'
    expected = (
        f'data: {{{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}}{tail}\n\n'
        f'data: {{{head},"choices":[{{"index":0,"delta":{{"reasoning_content":"Let me","reasoning":"Let me"}}{tail}\n\n'
        f'data: {{{head},"choices":[{{"index":0,"delta":{{"content":"Hel"}}{tail}\n\n'
        f'data: {{{head},"choices":[{{"index":0,"delta":{{"content":"lo"}}{tail}\n\n'
        f'data: {{{head},"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}]}}\n\n'
        f'data: {{{head},"choices":[],"usage":{{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,'
        f'"prompt_tokens_details":{{"cached_tokens":0}}}}}}\n\n'
        "data: [DONE]\n\n"
    )
    assert out.decode() == expected


def test_chat_stream_structure() -> None:
    stream = ChatStream("org/m:7b", include_usage=True)
    out = (
        stream.first()
        + stream.event(TextDelta('He said "hi"\n'))
        + stream.event(ToolCallDelta(0, "", id="call_a", name="get_weather"))
        + stream.event(ToolCallDelta(0, '{"city":'))
        + stream.event(ToolCallDelta(0, '"Paris"}'))
        + stream.event(Done("tool_calls", Usage(3, 4)))
    )
    recs = records(out)
    assert recs[-1] == b"[DONE]"
    chunks = [orjson.loads(r) for r in recs[:-1]]
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        (stream.id, stream.created, "org/m:7b", "chat.completion.chunk")
    }
    assert stream.id.startswith("chatcmpl-")
    *with_choices, usage_chunk = chunks
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    deltas = [c["choices"][0]["delta"] for c in with_choices]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all("role" not in d for d in deltas[1:])
    assert deltas[1] == {"content": 'He said "hi"\n'}
    assert deltas[-1] == {}
    finishes = [c["choices"][0]["finish_reason"] for c in with_choices]
    assert finishes == [None] * (len(with_choices) - 1) + ["tool_calls"]
    assert all(c["choices"][0]["index"] == 0 for c in with_choices)


def test_chat_stream_tool_call_deltas() -> None:
    stream = ChatStream("m", include_usage=False)
    first = orjson.loads(records(stream.event(ToolCallDelta(1, "", id="call_b", name="f")))[0])
    later = orjson.loads(records(stream.event(ToolCallDelta(1, '{"a":1}')))[0])
    assert first["choices"][0]["delta"] == {
        "tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"arguments": "", "name": "f"}}]
    }
    assert later["choices"][0]["delta"] == {"tool_calls": [{"index": 1, "function": {"arguments": '{"a":1}'}}]}


def test_chat_stream_usage_only_with_include_usage() -> None:
    done = Done("length", Usage(5, 6))
    without = records(ChatStream("m", include_usage=False).finish(done))
    assert len(without) == 2
    assert orjson.loads(without[0])["choices"][0]["finish_reason"] == "length"
    assert b"usage" not in without[0]
    assert without[1] == b"[DONE]"
    # include_usage but no usage known: no usage chunk either
    assert len(records(ChatStream("m", include_usage=True).finish(Done("stop")))) == 2


def test_chat_stream_error_done_reports_stop() -> None:
    chunk = orjson.loads(records(ChatStream("m", False).finish(Done("error")))[0])
    assert chunk["choices"][0]["finish_reason"] == "stop"


def test_chat_stream_error_record() -> None:
    out = ChatStream("m", include_usage=True).error(EngineUnavailable("engine died", code="engine_down"))
    recs = records(out)
    assert recs[-1] == b"[DONE]"
    assert len(recs) == 2
    assert orjson.loads(recs[0]) == {
        "error": {"message": "engine died", "type": "service_unavailable", "param": None, "code": "engine_down"}
    }
    assert out.endswith(SSE_DONE)


def test_error_body_has_all_four_keys() -> None:
    assert error_body(ModelNotFound("x")) == {
        "error": {
            "message": "The model `x` does not exist.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert error_body(InvalidRequest("bad", param="stop"))["error"] == {
        "message": "bad",
        "type": "invalid_request_error",
        "param": "stop",
        "code": None,
    }


def test_completion_stream_shape() -> None:
    stream = CompletionStream("m", include_usage=True)
    out = stream.event(TextDelta("Once")) or b""
    assert stream.event(ReasoningDelta("hidden")) is None
    out += stream.event(Done("length", Usage(1, 2))) or b""
    recs = records(out)
    assert recs[-1] == b"[DONE]"
    chunks = [orjson.loads(r) for r in recs[:-1]]
    assert [c["object"] for c in chunks] == ["text_completion"] * 3
    assert [c["choices"] for c in chunks] == [
        [{"index": 0, "text": "Once", "logprobs": None, "finish_reason": None}],
        [{"index": 0, "text": "", "logprobs": None, "finish_reason": "length"}],
        [],
    ]
    assert chunks[2]["usage"]["total_tokens"] == 3


# Non-streamed rendering ------------------------------------------------------------------------


def test_render_chat_text_and_reasoning() -> None:
    acc = Accumulator()
    for event in [ReasoningDelta("th"), ReasoningDelta("ink"), TextDelta("Hel"), TextDelta("lo")]:
        acc.add(event)
    acc.add(Done("stop", Usage(12, 3, 0)))
    body = render_chat("m", acc)
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello",
                "refusal": None,
                "tool_calls": None,
                "reasoning_content": "think",
                "reasoning": "think",
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_render_chat_tool_calls() -> None:
    acc = Accumulator()
    for event in [
        ToolCallDelta(0, "", id="call_a", name="get_weather"),
        ToolCallDelta(1, '{"city":"Rome"}', id="call_b", name="get_weather"),
        ToolCallDelta(0, '{"city":'),
        ToolCallDelta(0, '"Paris"}'),
        Done("tool_calls"),
    ]:
        acc.add(event)
    body = render_chat("m", acc)
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in body
    assert "reasoning_content" not in message


def test_render_chat_empty_answer_has_empty_string_content() -> None:
    acc = Accumulator()
    acc.add(Done("length"))
    assert render_chat("m", acc)["choices"][0]["message"]["content"] == ""


def test_render_completion() -> None:
    acc = Accumulator()
    acc.add(TextDelta("a"))
    acc.add(TextDelta("b"))
    acc.add(Done("length", Usage(1, 2)))
    body = render_completion("m", acc)
    assert body["object"] == "text_completion"
    assert body["choices"] == [{"index": 0, "text": "ab", "logprobs": None, "finish_reason": "length"}]
    assert body["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


VECTORS = [[0.25, -1.5, 3.0e-8, 12345.678], [1.0, 0.0, -0.0, 0.1]]


def test_render_embeddings_float() -> None:
    body = render_embeddings("e", Embeddings(VECTORS, prompt_tokens=7), "float")
    assert body == {
        "object": "list",
        "model": "e",
        "data": [
            {"object": "embedding", "index": 0, "embedding": VECTORS[0]},
            {"object": "embedding", "index": 1, "embedding": VECTORS[1]},
        ],
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }


def test_render_embeddings_base64_is_little_endian_float32() -> None:
    body = render_embeddings("e", Embeddings(VECTORS, prompt_tokens=7), "base64")
    for i, item in enumerate(body["data"]):
        assert item["index"] == i
        decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
        np.testing.assert_array_equal(decoded, np.asarray(VECTORS[i], dtype=np.float32))
    # what the openai SDK does: np.frombuffer(..., dtype="float32") on a little-endian host
    assert np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="float32")[0] == 0.25


# Client side: llama-server ---------------------------------------------------------------------

# Real chunks captured from this build's llama-server.
COMMON = (
    '"created":1795455590,"id":"chatcmpl-x","model":"m",'
    '"system_fingerprint":"b0-unknown","object":"chat.completion.chunk"'
)
REAL_CHUNKS = [
    '{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],' + COMMON + "}",
    '{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hello"}}],' + COMMON + "}",
    '{"choices":[{"finish_reason":"length","index":0,"delta":{}}],' + COMMON + "}",
    '{"choices":[],"created":1795455590,"id":"chatcmpl-x","model":"m","object":"chat.completion.chunk",'
    '"usage":{"completion_tokens":8,"prompt_tokens":32,"total_tokens":40,"prompt_tokens_details":{"cached_tokens":0}},'
    '"timings":{"cache_n":0,"prompt_n":32,"prompt_ms":98.962,"prompt_per_token_ms":3.09,"prompt_per_second":323.35,'
    '"predicted_n":8,"predicted_ms":68.003,"predicted_per_token_ms":9.71,"predicted_per_second":102.93}}',
]


def test_upstream_parser_real_llama_server_stream() -> None:
    parser = UpstreamChunkParser()
    events = [event for raw in REAL_CHUNKS for event in parser.feed(orjson.loads(raw))]
    assert events == [TextDelta("Hello")]
    assert parser.done() == Done(
        "length",
        Usage(prompt_tokens=32, completion_tokens=8, cached_tokens=0),
        Timings(prompt_ms=98.962, predicted_ms=68.003, prompt_per_second=323.35, predicted_per_second=102.93),
    )


def test_upstream_parser_default_done() -> None:
    assert UpstreamChunkParser().done() == Done("stop", None, None)


def test_upstream_parser_reasoning_and_tool_calls() -> None:
    parser = UpstreamChunkParser()
    chunks = [
        {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]},
        {"choices": [{"index": 0, "delta": {"reasoning": "more"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
                        ]
                    },
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    assert events == [
        ReasoningDelta("hmm"),
        ReasoningDelta("more"),
        ToolCallDelta(index=0, arguments="", id="call_1", name="f"),
        ToolCallDelta(index=0, arguments="{}", id=None, name=None),
    ]
    assert parser.done().finish_reason == "tool_calls"


def test_upstream_parser_legacy_completion_text_and_eos() -> None:
    parser = UpstreamChunkParser()
    assert parser.feed({"choices": [{"index": 0, "text": "abc", "finish_reason": None}]}) == [TextDelta("abc")]
    parser.feed({"choices": [{"index": 0, "text": "", "finish_reason": "eos"}]})
    assert parser.done().finish_reason == "stop"


def test_upstream_parser_error_chunk_raises() -> None:
    parser = UpstreamChunkParser()
    parser.feed(orjson.loads(REAL_CHUNKS[1]))
    with pytest.raises(UpstreamError, match="context size exceeded"):
        parser.feed({"error": {"code": 400, "message": "context size exceeded", "type": "exceed_context_size_error"}})
    with pytest.raises(UpstreamError, match="plain"):
        parser.feed({"error": "plain"})


def test_chat_to_wire_sampling_and_tools() -> None:
    schema = {"type": "object"}
    req = ChatRequest(
        model="m",
        messages=[
            Message(role="system", content="s"),
            Message(role="assistant", content=None, tool_calls=[ToolCall("call_1", "f", '{"a":1}')]),
            Message(role="tool", content="r", tool_call_id="call_1", name="f"),
        ],
        sampling=Sampling(
            max_tokens=10,
            temperature=0.0,
            top_k=5,
            stop=["x"],
            seed=1,
            repeat_penalty=1.2,
            ignore_eos=True,
            json_schema=schema,
            json_object=True,
        ),
        tools=[Tool(name="f", description="d", parameters={"type": "object", "properties": {}})],
        tool_choice="f",
    )
    assert chat_to_wire(req) == {
        "max_tokens": 10,
        "temperature": 0.0,
        "top_k": 5,
        "seed": 1,
        "repeat_penalty": 1.2,
        "stop": ["x"],
        "ignore_eos": True,
        "json_schema": schema,
        "model": "m",
        "messages": [
            {"role": "system", "content": "s"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
            },
            {"role": "tool", "content": "r", "tool_call_id": "call_1", "name": "f"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    }


def test_chat_to_wire_from_parsed_request() -> None:
    body = chat(
        repetition_penalty=1.3,
        response_format={"type": "json_object"},
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        max_completion_tokens=4,
    )
    wire = chat_to_wire(parse_chat(body))
    assert wire["repeat_penalty"] == 1.3
    assert "repetition_penalty" not in wire
    assert wire["response_format"] == {"type": "json_object"}
    assert wire["max_tokens"] == 4
    assert wire["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in wire["tools"]] == ["get_weather"]


def test_chat_to_wire_no_tools_when_choice_none() -> None:
    wire = chat_to_wire(parse_chat(chat(tools=[WEATHER_TOOL], tool_choice="none")))
    assert "tools" not in wire
    assert "tool_choice" not in wire
    assert wire == {
        "model": wire["model"],
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_chat_to_wire_required_choice() -> None:
    wire = chat_to_wire(parse_chat(chat(tools=[WEATHER_TOOL], tool_choice="required")))
    assert wire["tool_choice"] == "required"


def test_completion_to_wire() -> None:
    req = parse_completion({"model": "m", "prompt": [1, 2], "min_tokens": 3, "stop": "\n"})
    assert completion_to_wire(req) == {
        "max_tokens": 16,
        "stop": ["\n"],
        "model": "m",
        "prompt": [1, 2],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
