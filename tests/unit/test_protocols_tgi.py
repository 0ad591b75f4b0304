"""Golden tests of the TGI translator: wire request -> internal request, internal events -> exact bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmhost.protocols import tgi
from llmhost.types import (
    Done,
    EngineFailed,
    InvalidRequest,
    LlmhostError,
    ModelNotFound,
    Overloaded,
    QueueTimeout,
    Sampling,
    TextDelta,
    Timings,
    TokenInfo,
    Usage,
)

MODEL = "smol:q4"


def parse(body: Any, route: tgi.Route = "generate") -> tuple[Any, tgi.GenerateOptions]:
    return tgi.parse_generate(body, MODEL, route)


def invalid_message(body: Any, route: tgi.Route = "generate") -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse(body, route)
    return caught.value.message


# Parsing ----------------------------------------------------------------------------------------------------------


def test_parameters_map_to_internal_sampling() -> None:
    params = {
        "max_new_tokens": 8,
        "temperature": 0.7,
        "top_k": 40,
        "top_p": 0.9,
        "repetition_penalty": 1.1,
        "frequency_penalty": 0.5,
        "seed": 42,
        "stop": ["\n\n", "END"],
        "do_sample": True,
    }
    req, options = parse({"inputs": "Hi", "parameters": params})
    assert req.model == MODEL
    assert req.prompt == "Hi"
    assert req.stream is False
    assert req.sampling == Sampling(
        max_tokens=8,
        temperature=0.7,
        top_k=40,
        top_p=0.9,
        stop=["\n\n", "END"],
        seed=42,
        frequency_penalty=0.5,
        repeat_penalty=1.1,
        token_details=True,
    )
    assert options == tgi.GenerateOptions(inputs="Hi", details=False, return_full_text=False, seed=42, stream=False)


def test_parameters_present_without_do_sample_decode_greedily() -> None:
    req, options = parse({"inputs": "Hi", "parameters": {"max_new_tokens": 3}})
    assert (req.sampling.temperature, req.sampling.top_k, req.sampling.seed) == (0.0, 1, None)
    assert options.seed is None, "TGI reports no seed for greedy decoding"


def test_absent_parameters_sample_with_a_reported_seed() -> None:
    """TGI's default_parameters() has do_sample true; it then picks a seed and reports it."""
    req, options = parse({"inputs": "Hi"})
    assert req.sampling.temperature is None
    assert isinstance(req.sampling.seed, int)
    assert 0 <= req.sampling.seed < 2**32 - 1
    assert options.seed == req.sampling.seed
    assert req.sampling.max_tokens == tgi.DEFAULT_MAX_NEW_TOKENS
    assert req.sampling.token_details is True


def test_a_warper_turns_sampling_on_even_without_do_sample() -> None:
    req, options = parse({"inputs": "Hi", "parameters": {"top_p": 0.5, "seed": 7}})
    assert (req.sampling.temperature, req.sampling.top_k, req.sampling.top_p) == (None, None, 0.5)
    assert options.seed == 7


def test_ignored_parameters_are_accepted() -> None:
    body = {
        "inputs": "Hi",
        "parameters": {"typical_p": 0.5, "watermark": True, "truncate": 10, "adapter_id": "x", "top_n_tokens": 0},
        "unknown_field": 1,
    }
    req, _ = parse(body)
    assert req.prompt == "Hi"


def test_null_parameters_count_as_absent() -> None:
    req, _ = parse({"inputs": "Hi", "parameters": None})
    assert req.sampling.temperature is None  # sampling, as with no parameters at all


def test_empty_stop_strings_are_dropped() -> None:
    req, _ = parse({"inputs": "Hi", "parameters": {"stop": ["", "x"]}})
    assert req.sampling.stop == ["x"]


@pytest.mark.parametrize(
    ("route", "stream_field", "expected"),
    [
        ("generate", True, False),
        ("generate_stream", False, True),
        ("compat", False, False),
        ("compat", True, True),
    ],
)
def test_which_requests_stream(route: tgi.Route, stream_field: bool, expected: bool) -> None:
    req, options = parse({"inputs": "Hi", "stream": stream_field}, route)
    assert req.stream is options.stream is expected


@pytest.mark.parametrize(
    ("route", "value", "expected"),
    [
        ("generate", None, False),
        ("generate_stream", None, False),
        ("compat", None, True),  # POST / defaults to the full text for a text-generation model
        ("compat", False, False),
        ("generate", True, True),
    ],
)
def test_return_full_text_defaults(route: tgi.Route, value: bool | None, expected: bool) -> None:
    params = {} if value is None else {"return_full_text": value}
    _, options = parse({"inputs": "Hi", "parameters": params}, route)
    assert options.return_full_text is expected


def test_details_flag() -> None:
    _, options = parse({"inputs": "Hi", "parameters": {"details": True}})
    assert options.details is True


@pytest.mark.parametrize(
    ("grammar", "schema", "json_object"),
    [
        (
            {"type": "json", "value": {"properties": {"a": {"type": "integer"}}}},
            {"properties": {"a": {"type": "integer"}}},
            False,
        ),
        ({"type": "json_object", "value": '{"type": "object"}'}, {"type": "object"}, False),
        ({"type": "json_schema", "value": {"name": "x", "schema": {"type": "array"}}}, {"type": "array"}, False),
        ({"type": "json", "value": {}}, None, True),
    ],
)
def test_json_grammars(grammar: dict[str, Any], schema: dict[str, Any] | None, json_object: bool) -> None:
    req, _ = parse({"inputs": "Hi", "parameters": {"grammar": grammar}})
    assert req.sampling.json_schema == schema
    assert req.sampling.json_object is json_object


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"temperature": -1.0}, "`temperature` must be strictly positive"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_p": 0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"typical_p": 1.0}, "`typical_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"repetition_penalty": 0}, "`repetition_penalty` must be strictly positive"),
        ({"frequency_penalty": 2.5}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ({"best_of": 0}, "`best_of` must be > 0 and <= 1. Given: 0"),
        ({"best_of": 2, "do_sample": True}, "`best_of` != 1 is not allowed for this endpoint"),
        ({"top_n_tokens": 2}, "`top_n_tokens` != 0 is not allowed for this endpoint"),
        ({"seed": -1}, "`seed` must be >= 0"),
        ({"truncate": 0}, "`truncate` must be strictly positive"),
        ({"decoder_input_details": True}, "`decoder_input_details` == true is not supported"),
        ({"grammar": {"type": "regex", "value": "a+"}}, "grammar is not supported: `regex` grammars"),
        ({"grammar": {"type": "json", "value": "{nope"}}, "grammar is not valid: "),
        ({"grammar": {"type": "json", "value": [1]}}, "grammar is not valid: the value must be a JSON schema object"),
        ({"grammar": {"type": "xml"}}, "grammar is not valid: unknown type `xml`"),
        ({"temperature": "hot"}, "Failed to deserialize the JSON body: `parameters.temperature`"),
        ({"max_new_tokens": 1.5}, "Failed to deserialize the JSON body: `parameters.max_new_tokens`"),
    ],
)
def test_validation_messages(params: dict[str, Any], message: str) -> None:
    got = invalid_message({"inputs": "Hi", "parameters": params})
    assert got.startswith(message), got
    assert "model_kwargs" not in got, "huggingface_hub would retry forever (api-compat rule 16)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": ""}, "`inputs` cannot be empty"),
        ({"parameters": {}}, "Failed to deserialize the JSON body: `inputs`"),
        ({"inputs": ["a"]}, "Failed to deserialize the JSON body: `inputs`"),
        ([{"inputs": "a"}], "The request body must be a JSON object."),
    ],
)
def test_bad_bodies(body: Any, message: str) -> None:
    assert invalid_message(body).startswith(message)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"decoder_input_details": True}, "`decoder_input_details` == true is not supported when streaming tokens"),
        ({"best_of": 2}, "`best_of` != 1 is not supported when streaming tokens"),
    ],
)
def test_streaming_only_checks(params: dict[str, Any], message: str) -> None:
    assert invalid_message({"inputs": "Hi", "parameters": params}, "generate_stream") == message


# Stream rendering -------------------------------------------------------------------------------------------------


def tok(token_id: int, text: str, logprob: float | None = -0.5) -> TokenInfo:
    return TokenInfo(token_id, text, logprob)


def delta(*tokens: TokenInfo) -> TextDelta:
    return TextDelta("".join(t.text for t in tokens), list(tokens))


def options(**kwargs: Any) -> tgi.GenerateOptions:
    return tgi.GenerateOptions(**{"inputs": "Say:", "stream": True, **kwargs})


def test_stream_holds_back_exactly_one_token_for_the_final_record() -> None:
    stream = tgi.GenerateStream(options())
    assert stream.event(delta(tok(10, " Hel"))) is None, "the first token waits: it could be the last"
    assert stream.event(delta(tok(11, "lo", -0.25))) == (
        b'data:{"index":1,"token":{"id":10,"text":" Hel","logprob":-0.5,"special":false},'
        b'"generated_text":null,"details":null}\n\n'
    )
    assert stream.event(Done("length", Usage(3, 2))) == (
        b'data:{"index":2,"token":{"id":11,"text":"lo","logprob":-0.25,"special":false},'
        b'"generated_text":" Hello","details":null}\n\n'
    )


def test_stream_final_record_with_details() -> None:
    stream = tgi.GenerateStream(options(details=True, seed=7))
    stream.event(delta(tok(10, "4")))
    final = stream.event(Done("length", Usage(prompt_tokens=5, completion_tokens=1)))
    assert final == (
        b'data:{"index":1,"token":{"id":10,"text":"4","logprob":-0.5,"special":false},"generated_text":"4",'
        b'"details":{"finish_reason":"length","generated_tokens":1,"seed":7,"input_length":5}}\n\n'
    )


def test_stream_several_tokens_in_one_delta() -> None:
    stream = tgi.GenerateStream(options())
    out = stream.event(delta(tok(1, "a"), tok(2, "b"), tok(3, "c")))
    assert out is not None
    records = [orjson.loads(r[len(b"data:") :]) for r in out.split(b"\n\n") if r]
    assert [r["index"] for r in records] == [1, 2]
    assert [r["token"]["id"] for r in records] == [1, 2]
    final = orjson.loads(stream.finish(Done("stop", Usage(1, 3)))[len(b"data:") :])
    assert (final["index"], final["token"]["id"], final["generated_text"]) == (3, 3, "abc")


def test_stream_end_of_sequence_token_is_special() -> None:
    stream = tgi.GenerateStream(options(details=True))
    stream.event(delta(tok(36, "4")))
    stream.event(delta(tok(2, "")))
    final = orjson.loads(stream.finish(Done("stop", Usage(9, 2), stop_sequence=False))[5:])
    assert final["token"] == {"id": 2, "text": "", "logprob": -0.5, "special": True}
    assert final["details"]["finish_reason"] == "eos_token"
    assert final["generated_text"] == "4"


def test_stream_return_full_text_prepends_the_inputs() -> None:
    stream = tgi.GenerateStream(options(return_full_text=True))
    stream.event(delta(tok(1, " ok")))
    final = orjson.loads(stream.finish(Done("length"))[5:])
    assert final["generated_text"] == "Say: ok"


def test_stream_without_any_token_still_ends_with_a_token() -> None:
    stream = tgi.GenerateStream(options(details=True))
    final = orjson.loads(stream.finish(Done("stop", Usage(4, 0)))[5:])
    assert final["token"] == {"id": 0, "text": "", "logprob": None, "special": True}
    assert final["generated_text"] == ""
    assert final["details"]["generated_tokens"] == 0


def test_stream_text_without_token_ids_is_not_lost() -> None:
    stream = tgi.GenerateStream(options())
    stream.event(TextDelta("abc"))
    final = orjson.loads(stream.finish(Done("length"))[5:])
    assert final["token"]["text"] == "abc"
    assert final["generated_text"] == "abc"


def test_stream_error_flushes_the_held_token_then_the_error() -> None:
    stream = tgi.GenerateStream(options())
    stream.event(delta(tok(5, "x")))
    assert stream.error(EngineFailed("engine died")) == (
        b'data:{"index":1,"token":{"id":5,"text":"x","logprob":-0.5,"special":false},'
        b'"generated_text":null,"details":null}\n\n'
        b'data:{"error":"Request failed during generation: engine died","error_type":"generation"}\n\n'
    )


def test_error_event_before_any_token() -> None:
    assert tgi.error_event(InvalidRequest("`temperature` must be strictly positive")) == (
        b'data:{"error":"Input validation error: `temperature` must be strictly positive",'
        b'"error_type":"validation"}\n\n'
    )


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        (Done("length"), "length"),
        (Done("stop", stop_sequence=True), "stop_sequence"),
        (Done("stop", stop_sequence=False), "eos_token"),
        (Done("stop"), "eos_token"),
        (Done("error"), "eos_token"),
    ],
)
def test_finish_reasons(done: Done, expected: str) -> None:
    assert tgi.finish_reason(done) == expected


# Non-streamed rendering ---------------------------------------------------------------------------------------------


def accumulate(*events: TextDelta | Done) -> tgi.Accumulator:
    acc = tgi.Accumulator()
    for event in events:
        acc.add(event)
    return acc


def test_generate_response_without_details() -> None:
    acc = accumulate(delta(tok(1, "Hi")), delta(tok(2, "!")), Done("length", Usage(2, 2)))
    assert tgi.render_generate(acc, options(stream=False)) == {"generated_text": "Hi!"}


def test_generate_response_with_details() -> None:
    acc = accumulate(delta(tok(1, "Hi", -0.1)), delta(tok(2, "", -0.2)), Done("stop", Usage(2, 2), stop_sequence=False))
    body = tgi.render_generate(acc, options(details=True, return_full_text=True, seed=None))
    assert body == {
        "generated_text": "Say:Hi",
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": 2,
            "seed": None,
            "prefill": [],
            "tokens": [
                {"id": 1, "text": "Hi", "logprob": -0.1, "special": False},
                {"id": 2, "text": "", "logprob": -0.2, "special": True},
            ],
        },
    }


def test_stop_sequence_finish_marks_no_special_token() -> None:
    acc = accumulate(delta(tok(1, "a")), delta(tok(2, "")), Done("stop", Usage(1, 2), stop_sequence=True))
    details = tgi.render_generate(acc, options(details=True))["details"]
    assert details["finish_reason"] == "stop_sequence"
    assert [t["special"] for t in details["tokens"]] == [False, False]


def test_response_headers_carry_only_measured_values() -> None:
    acc = accumulate(delta(tok(1, "a")), Done("length", Usage(5, 4), Timings(prompt_ms=10.0, predicted_ms=30.0)))
    headers = tgi.response_headers(acc, options(inputs="hello"), total_s=0.0512, validation_s=0.0004)
    assert headers == {
        "x-compute-time": "0.051200",
        "x-compute-characters": "5",
        "x-total-time": "51",
        "x-validation-time": "0",
        "x-prompt-tokens": "5",
        "x-generated-tokens": "4",
        "x-inference-time": "40",
        "x-time-per-token": "10",
    }
    bare = tgi.response_headers(accumulate(Done("stop")), options(), total_s=0.01, validation_s=0.0)
    assert not {"x-prompt-tokens", "x-generated-tokens", "x-inference-time", "x-time-per-token"} & bare.keys()


# /info and errors -------------------------------------------------------------------------------------------------


def test_info_has_the_union_of_fields() -> None:
    info = tgi.render_info(tgi.ModelFacts("smol:q4", ctx=2048, parallel=2, queue_size=32, dtype="Q4_1"), "1.2.3")
    assert info["model_id"] == "smol:q4"
    assert info["max_input_tokens"] == info["max_input_length"] == 2047
    assert info["max_total_tokens"] == 2048
    assert info["max_batch_total_tokens"] == 4096
    assert info["max_concurrent_requests"] == 34
    assert info["max_best_of"] == 1
    assert info["max_stop_sequences"] == 4
    assert info["router"] == "text-generation-router"
    assert info["version"] == "1.2.3"
    assert info["model_pipeline_tag"] == "text-generation"
    for key in ("model_sha", "model_dtype", "model_device_type", "validation_workers", "max_client_batch_size"):
        assert key in info
    for key in ("waiting_served_ratio", "max_waiting_tokens", "max_batch_size", "sha", "docker_label"):
        assert key in info


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        (InvalidRequest("bad"), 422, "validation"),
        (ModelNotFound("m"), 422, "validation"),
        (Overloaded("busy"), 429, "overloaded"),
        (QueueTimeout("slow"), 503, "overloaded"),
        (EngineFailed("boom"), 424, "generation"),
    ],
)
def test_error_status_and_body(error: LlmhostError, status: int, error_type: str) -> None:
    assert tgi.error_status(error) == status
    assert tgi.error_body(error)["error_type"] == error_type
