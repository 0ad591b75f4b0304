"""The TGI dialect against the real engine: raw wire checks with httpx, then TGI's own client (text-generation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import text_generation
from text_generation.errors import ValidationError as TgiValidationError

from conftest import DEFAULT_MODEL, LlmhostServer

pytestmark = [
    pytest.mark.integration,
    # text-generation 0.7.0 calls pydantic's deprecated .dict(); not ours to fix
    pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning"),
]

PROMPT = "The capital of France is"  # a plain continuation: greedy decoding runs to max_new_tokens
CHAT_PROMPT = "<|im_start|>user\nWhat is 2+2? Answer with a number only.<|im_end|>\n<|im_start|>assistant\n"
SMALL = 8
FINISH_REASONS = {"length", "eos_token", "stop_sequence"}


def sse_records(raw: bytes) -> list[bytes]:
    """Split TGI SSE bytes into records; every record must be a complete ``data:`` line."""
    assert raw.endswith(b"\n\n"), raw[-80:]
    return raw[:-2].split(b"\n\n")


def sse_payloads(raw: bytes) -> list[dict[str, Any]]:
    records = sse_records(raw)
    for record in records:
        assert record.startswith(b"data:{"), f"TGI writes data: with no space: {record[:40]!r}"
    return [orjson.loads(record[len(b"data:") :]) for record in records]


def stream_bytes(http: httpx.Client, path: str, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    with http.stream("POST", path, json=body) as response:
        return response, response.read()


@pytest.fixture(scope="module")
def tg_client(server: LlmhostServer) -> Iterator[text_generation.Client]:
    yield text_generation.Client(server.base_url, timeout=120)


# Checklist 25: framing --------------------------------------------------------------------------------------------


def test_checklist_25_root_returns_array(http: httpx.Client) -> None:
    response = http.post("/", json={"inputs": PROMPT, "parameters": {"max_new_tokens": SMALL}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["generated_text"].startswith(PROMPT), "POST / returns the full text by default"
    assert "details" not in body[0]


def test_checklist_25_generate_returns_object(http: httpx.Client) -> None:
    response = http.post("/generate", json={"inputs": PROMPT, "parameters": {"max_new_tokens": SMALL}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    assert set(body) == {"generated_text"}
    assert body["generated_text"] and not body["generated_text"].startswith(PROMPT)


def test_checklist_25_generate_stream_framing(http: httpx.Client) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": SMALL, "details": True}}
    response, raw = stream_bytes(http, "/generate_stream", body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert b"[DONE]" not in raw
    assert b"data: " not in raw
    events = sse_payloads(raw)
    assert [event["index"] for event in events] == list(range(1, len(events) + 1))
    *tokens, last = events
    assert all(event["generated_text"] is None and event["details"] is None for event in tokens)
    assert last["generated_text"] == "".join(event["token"]["text"] for event in events)
    assert last["details"]["finish_reason"] == "length"
    assert last["details"]["generated_tokens"] == len(events) == SMALL
    assert last["details"]["input_length"] > 0
    assert all(set(event["token"]) == {"id", "text", "logprob", "special"} for event in events)


def test_streaming_root_behaves_like_generate_stream(http: httpx.Client) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 4}, "stream": True}
    response, raw = stream_bytes(http, "/", body)
    assert response.status_code == 200
    assert b"[DONE]" not in raw
    events = sse_payloads(raw)
    assert len(events) == 4
    assert events[-1]["generated_text"].startswith(PROMPT)
    assert events[-1]["details"] is None, "details only when asked for"


# Checklist 26: validation errors -----------------------------------------------------------------------------------


def test_checklist_26_temperature_zero_on_generate_is_422(http: httpx.Client) -> None:
    response = http.post("/generate", json={"inputs": "Hi", "parameters": {"temperature": 0}})
    assert response.status_code == 422
    assert response.json() == {
        "error": "Input validation error: `temperature` must be strictly positive",
        "error_type": "validation",
    }


def test_checklist_26_temperature_zero_on_generate_stream_is_200_with_error_event(http: httpx.Client) -> None:
    response, raw = stream_bytes(http, "/generate_stream", {"inputs": "Hi", "parameters": {"temperature": 0}})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse_payloads(raw) == [
        {"error": "Input validation error: `temperature` must be strictly positive", "error_type": "validation"}
    ]


def test_checklist_26_root_errors_follow_the_stream_flag(http: httpx.Client) -> None:
    bad = {"inputs": "Hi", "parameters": {"top_k": 0}}
    assert http.post("/", json=bad).status_code == 422
    response, raw = stream_bytes(http, "/", {**bad, "stream": True})
    assert response.status_code == 200
    assert sse_payloads(raw)[0]["error_type"] == "validation"


# Checklist 27: /info and /health ------------------------------------------------------------------------------------


def test_checklist_27_info_and_health(http: httpx.Client) -> None:
    info = http.get("/info")
    assert info.status_code == 200
    body = info.json()
    assert body["model_id"] == DEFAULT_MODEL
    assert body["max_total_tokens"] == 2048  # the test profile's context per slot
    assert body["max_input_tokens"] == body["max_input_length"] == 2047
    assert isinstance(body["version"], str) and body["version"]
    assert body["router"] == "text-generation-router"
    health = http.get("/health")
    assert health.status_code == 200
    assert health.content == b""


# Details, finish reasons and headers -------------------------------------------------------------------------------


def test_max_new_tokens_gives_length_and_exact_token_count(http: httpx.Client) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": SMALL, "details": True}}
    response = http.post("/generate", json=body)
    assert response.status_code == 200, response.text
    details = response.json()["details"]
    assert details["finish_reason"] == "length"
    assert details["generated_tokens"] == SMALL == len(details["tokens"])
    assert details["prefill"] == []
    assert details["seed"] is None, "greedy decoding reports no seed"
    assert "".join(token["text"] for token in details["tokens"]) == response.json()["generated_text"]
    assert all(isinstance(token["logprob"], float) and token["logprob"] <= 0 for token in details["tokens"])
    assert response.headers["x-generated-tokens"] == str(SMALL)
    assert int(response.headers["x-prompt-tokens"]) > 0
    assert float(response.headers["x-compute-time"]) > 0
    assert int(response.headers["x-inference-time"]) >= 0


def test_sampling_reports_the_seed_it_used(http: httpx.Client) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 4, "do_sample": True, "details": True}}
    first = http.post("/generate", json=body).json()
    seed = first["details"]["seed"]
    assert isinstance(seed, int)
    again = http.post("/generate", json={**body, "parameters": {**body["parameters"], "seed": seed}}).json()
    assert again["generated_text"] == first["generated_text"], "the reported seed reproduces the answer"


def test_end_of_sequence_is_eos_token_with_a_special_last_token(http: httpx.Client) -> None:
    body = {"inputs": CHAT_PROMPT, "parameters": {"max_new_tokens": 48, "details": True}}
    details = http.post("/generate", json=body).json()["details"]
    assert details["finish_reason"] == "eos_token", details
    assert details["tokens"][-1]["special"] is True
    assert not any(token["special"] for token in details["tokens"][:-1])


def test_stop_sequence_finish_reason(http: httpx.Client) -> None:
    base = {"inputs": PROMPT, "parameters": {"max_new_tokens": SMALL, "details": True}}
    tokens = http.post("/generate", json=base).json()["details"]["tokens"]
    stop = next(token["text"].strip() for token in tokens[2:] if token["text"].strip())
    body = {"inputs": PROMPT, "parameters": {**base["parameters"], "stop": [stop]}}
    answer = http.post("/generate", json=body).json()
    assert stop not in answer["generated_text"]
    assert answer["details"]["finish_reason"] == "stop_sequence"


def test_client_disconnect_mid_stream_leaves_the_server_serving(server: LlmhostServer) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 200}}
    with (
        httpx.Client(base_url=server.base_url, timeout=120) as client,
        client.stream("POST", "/generate_stream", json=body) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_raw())
        assert first.startswith(b"data:{")
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        after = client.post("/generate", json={"inputs": PROMPT, "parameters": {"max_new_tokens": 2}})
    assert after.status_code == 200
    assert after.json()["generated_text"]


# Checklist 23: text-generation, TGI's own client ---------------------------------------------------------------------


def test_checklist_23_text_generation_generate(tg_client: text_generation.Client) -> None:
    response = tg_client.generate(PROMPT, max_new_tokens=SMALL)
    assert response.generated_text
    assert response.details.finish_reason.value in FINISH_REASONS
    assert response.details.generated_tokens == len(response.details.tokens) == SMALL
    assert all(token.special is False for token in response.details.tokens)
    assert "".join(token.text for token in response.details.tokens) == response.generated_text


def test_checklist_23_text_generation_generate_stream(tg_client: text_generation.Client) -> None:
    responses = list(tg_client.generate_stream(PROMPT, max_new_tokens=SMALL))
    assert len(responses) == SMALL
    assert all(response.generated_text is None for response in responses[:-1])
    last = responses[-1]
    assert last.generated_text == "".join(response.token.text for response in responses)
    assert last.details is not None
    assert last.details.finish_reason.value == "length"
    assert last.details.generated_tokens == SMALL


def test_checklist_23_text_generation_errors(tg_client: text_generation.Client) -> None:
    with pytest.raises(TgiValidationError, match="`max_new_tokens` must be strictly positive"):
        tg_client.generate(PROMPT, max_new_tokens=0)
    with pytest.raises(TgiValidationError, match="`max_new_tokens` must be strictly positive"):
        list(tg_client.generate_stream(PROMPT, max_new_tokens=0))


def test_tgi_tokenize_gives_ids_texts_and_offsets(http: httpx.Client) -> None:
    inputs = "The lighthouse keeper"
    tokens = http.post("/tokenize", json={"inputs": inputs}).json()
    assert [t["id"] for t in tokens] == http.post("/tokenize", json={"model": DEFAULT_MODEL, "prompt": inputs}).json()[
        "tokens"
    ]
    assert "".join(t["text"] for t in tokens) == inputs
    assert all(inputs[t["start"] : t["stop"]] == t["text"] for t in tokens)
    assert http.post("/tokenize", json={"inputs": ""}).status_code == 400
