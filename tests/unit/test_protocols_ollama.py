"""Golden tests of the Ollama translator: wire JSON in → internal request; internal events in → exact bytes out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmhost.protocols import ollama
from llmhost.types import (
    ChatRequest,
    CompletionRequest,
    Done,
    InvalidRequest,
    ModelNotFound,
    ReasoningDelta,
    TextDelta,
    Timings,
    ToolCallDelta,
    Usage,
)


def lines(raw: bytes) -> list[dict[str, Any]]:
    assert raw.endswith(b"\n") and b"\n\n" not in raw
    return [json.loads(line) for line in raw.decode().splitlines()]


def strip_times(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in {"created_at", "total_duration"}}


# --- requests ------------------------------------------------------------------------------------


def test_chat_request_maps_messages_options_and_defaults_to_streaming() -> None:
    req, generation = ollama.parse_chat(
        {
            "model": "m",
            "messages": [
                {"role": "SYSTEM", "content": "be brief"},
                {"role": "user", "content": "hi", "images": ["aGk="]},
                {
                    "role": "assistant",
                    "content": "",
                    "thinking": "hmm",
                    "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
                },
                {"role": "tool", "content": "42", "tool_name": "f"},
            ],
            "options": {"num_predict": 7, "temperature": 0, "top_k": 5.0, "seed": -1, "stop": "x", "num_ctx": 9},
            "keep_alive": "5m",
            "think": "high",
        }
    )
    assert isinstance(req, ChatRequest) and generation.stream and req.stream and not generation.load_only
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool"]
    assert req.messages[1].images == ["aGk="]
    assert req.messages[2].reasoning == "hmm"
    assert json.loads(req.messages[2].tool_calls[0].arguments) == {"a": 1}
    assert req.messages[3].name == "f" and req.messages[3].tool_call_id
    s = req.sampling
    assert (s.max_tokens, s.temperature, s.top_k, s.seed, s.stop) == (7, 0.0, 5, None, ["x"])
    assert req.keep_alive == 300 and generation.keep_alive == 300 and req.think is True


def test_generate_is_a_one_turn_chat_unless_raw() -> None:
    req, _ = ollama.parse_generate({"model": "m", "prompt": "hi", "system": "s", "stream": False, "format": "json"})
    assert isinstance(req, ChatRequest) and not req.stream
    assert [(m.role, m.content) for m in req.messages] == [("system", "s"), ("user", "hi")]
    assert req.sampling.json_object
    raw, _ = ollama.parse_generate({"model": "m", "prompt": "1, 2,", "raw": True, "format": {"type": "object"}})
    assert (
        isinstance(raw, CompletionRequest) and raw.prompt == "1, 2," and raw.sampling.json_schema == {"type": "object"}
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m", "prompt": "x", "raw": True, "system": "s"}, "raw mode does not support"),
        (
            {"model": "m", "prompt": "x", "options": {"temperature": "hot"}},
            'option "temperature" must be of type float',
        ),
        (
            {"model": "m", "prompt": "x", "options": {"num_predict": 1.5}},
            'option "num_predict" must be of type integer',
        ),
        ({"model": "m", "prompt": "x", "options": {"stop": [1]}}, 'option "stop" must be of type array'),
        ({"model": "m", "prompt": "x", "format": "yaml"}, "invalid format"),
        ({"model": "m", "prompt": "x", "keep_alive": "soon"}, "keep_alive"),
        ({"prompt": "x"}, "model"),
    ],
)
def test_bad_generate_requests_are_400(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ollama.parse_generate(body)
    assert message in caught.value.message


def test_empty_prompt_and_empty_messages_only_load() -> None:
    assert ollama.parse_generate({"model": "m"})[1].load_only
    assert ollama.parse_chat({"model": "m", "messages": []})[1].load_only


def test_embed_inputs() -> None:
    req, dimensions = ollama.parse_embed({"model": "m", "input": "a", "dimensions": 8})
    assert req.inputs == ["a"] and dimensions == 8
    with pytest.raises(InvalidRequest):
        ollama.parse_embed({"model": "m", "input": ["a", ""]})
    assert ollama.parse_embeddings({"model": "m", "prompt": ""}).inputs == []


# --- responses -----------------------------------------------------------------------------------


DONE = Done("stop", Usage(10, 3), Timings(prompt_ms=20.0, predicted_ms=30.5))


def test_chat_stream_objects() -> None:
    stream = ollama.OllamaStream("m", "chat", started=0.0)
    out = b"".join(
        part
        for part in (
            stream.event(ReasoningDelta("think")),
            stream.event(TextDelta("Hel")),
            stream.event(TextDelta("")),
            stream.event(TextDelta("lo")),
            stream.event(DONE),
        )
        if part
    )
    objects = [strip_times(o) for o in lines(out)]
    assert objects == [
        {"model": "m", "message": {"role": "assistant", "content": "", "thinking": "think"}, "done": False},
        {"model": "m", "message": {"role": "assistant", "content": "Hel"}, "done": False},
        {"model": "m", "message": {"role": "assistant", "content": "lo"}, "done": False},
        {
            "model": "m",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 10,
            "prompt_eval_duration": 20_000_000,
            "eval_count": 3,
            "eval_duration": 30_500_000,
        },
    ]


def test_tool_calls_are_sent_whole_with_object_arguments_before_the_final_object() -> None:
    stream = ollama.OllamaStream("m", "chat", started=0.0)
    assert stream.event(ToolCallDelta(0, '{"city": ', id="call_1", name="get_weather")) is None
    assert stream.event(ToolCallDelta(0, '"Paris"}')) is None
    objects = lines(stream.event(Done("tool_calls")) or b"")
    assert objects[0]["message"]["tool_calls"] == [
        {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert objects[0]["done"] is False and objects[1]["done"] is True and objects[1]["done_reason"] == "stop"


def test_generate_stream_and_whole_answer() -> None:
    stream = ollama.OllamaStream("m", "generate", started=0.0)
    assert strip_times(lines(stream.event(TextDelta("a")) or b"")[0]) == {"model": "m", "response": "a", "done": False}
    whole = ollama.OllamaStream("m", "generate", started=0.0)
    for event in (ReasoningDelta("r"), TextDelta("a"), TextDelta("b"), Done("length", Usage(1, 2))):
        whole.gathered.add(event)
    body = strip_times(whole.whole())
    assert body == {
        "model": "m",
        "response": "ab",
        "thinking": "r",
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 1,
        "eval_count": 2,
    }


def test_zero_metrics_are_left_out_and_load_answer() -> None:
    stream = ollama.OllamaStream("m", "chat", started=0.0)
    assert strip_times(stream.final(Done("stop"), "")) == {
        "model": "m",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
    }
    assert strip_times(stream.load_answer("unload"))["done_reason"] == "unload"


def test_errors_are_a_bare_string() -> None:
    assert ollama.error_body(ModelNotFound("x")) == {"error": "model 'x' not found"}
    stream = ollama.OllamaStream("m", "chat", started=0.0)
    assert stream.error(InvalidRequest("bad")) == b'{"error":"bad"}\n'


def test_normalise_truncates_then_normalises() -> None:
    assert ollama.normalise([3.0, 4.0, 12.0], 2) == [0.6, 0.8]
    assert ollama.normalise([0.0, 0.0]) == [0.0, 0.0]


def test_model_info_hides_template_and_empties_long_arrays() -> None:
    fields = {"general.name": "x", "tokenizer.chat_template": "t", "llama.context_length": 8, "a": [1] * 6, "b": [1]}
    assert ollama.model_info(fields, 135, verbose=False) == {
        "llama.context_length": 8,
        "a": [],
        "b": [1],
        "general.parameter_count": 135,
    }
    assert ollama.model_info(fields, None, verbose=True)["a"] == [1] * 6
