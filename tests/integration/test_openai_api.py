"""The OpenAI dialect end to end: real service, real engine, real model, the real openai SDK and raw httpx."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from pydantic import BaseModel

from conftest import ALIAS, DEFAULT_MODEL, LlmhostServer

pytestmark = pytest.mark.integration

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}
HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 42}


def sse_records(body: bytes) -> list[bytes]:
    """Split a raw SSE body into records, asserting the OpenAI framing on the way."""
    assert body.endswith(b"\n\n"), f"the stream does not end with a blank line: {body[-80:]!r}"
    records = body.split(b"\n\n")
    assert records[-1] == b""
    return records[:-1]


def chunk_payloads(records: list[bytes]) -> list[dict[str, Any]]:
    assert records[-1] == b"data: [DONE]", f"last record is {records[-1]!r}"
    payloads = []
    for record in records[:-1]:
        assert record.startswith(b"data: "), f"not a data record: {record!r}"
        assert b"\n" not in record, f"multi-line record: {record!r}"
        payloads.append(json.loads(record[len(b"data: ") :]))
    return payloads


# --- chat ----------------------------------------------------------------------------------------------


def test_checklist_02_chat_non_streamed_role_finish_reason_and_usage_total(openai_client: openai.OpenAI) -> None:
    """§7.2: role "assistant", a finish_reason from the enum, and usage.total_tokens == prompt + completion."""
    completion = openai_client.chat.completions.create(model=DEFAULT_MODEL, messages=HELLO, max_tokens=16, **GREEDY)
    assert completion.object == "chat.completion"
    assert completion.model == DEFAULT_MODEL
    assert completion.id.startswith("chatcmpl-")
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in FINISH_REASONS
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    expected = "length" if usage.completion_tokens == 16 else "stop"
    assert choice.finish_reason == expected
    assert completion._request_id and completion._request_id.startswith("req-")


def test_chat_via_alias_echoes_requested_model(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(model=ALIAS, messages=HELLO, max_tokens=8, **GREEDY)
    assert completion.model == ALIAS
    assert completion.choices[0].message.content


def test_checklist_03_stream_helper_final_message_not_doubled(openai_client: openai.OpenAI) -> None:
    """§7.3: the SDK's ``.stream()`` helper concatenates every delta field, so a repeated role or text would show
    up doubled ("assistantassistant"): the final message must be exactly the deltas, and equal the greedy answer."""
    deltas: list[str] = []
    chunks = []
    with openai_client.chat.completions.stream(model=DEFAULT_MODEL, messages=HELLO, max_tokens=16, **GREEDY) as stream:
        for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)
            elif event.type == "chunk":
                chunks.append(event.chunk)
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.role == "assistant", f"role accumulated to {message.role!r}"
    assert final.id == chunks[0].id
    assert deltas, "no content deltas"
    assert message.content == "".join(deltas)
    assert message.content.strip()
    assert final.choices[0].finish_reason in FINISH_REASONS

    roles = [chunk.choices[0].delta.role for chunk in chunks if chunk.choices]
    assert roles[0] == "assistant"
    assert all(role is None for role in roles[1:]), f"role repeated in later chunks: {roles}"
    assert len({chunk.id for chunk in chunks}) == 1, "chunks do not share one id"
    assert len({chunk.created for chunk in chunks}) == 1, "chunks do not share one created"
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] in FINISH_REASONS
    assert all(reason is None for reason in finishes[:-1])

    # Greedy decoding: the stream says what the non-streamed answer says.
    whole = openai_client.chat.completions.create(model=DEFAULT_MODEL, messages=HELLO, max_tokens=16, **GREEDY)
    assert whole.choices[0].message.content == message.content


def test_checklist_04_include_usage_gives_one_usage_chunk_last_before_done(
    openai_client: openai.OpenAI, http: httpx.Client
) -> None:
    """§7.4: exactly one chunk with ``choices == []`` and usage, after the finish chunk and right before [DONE]."""
    body: dict[str, Any] = {
        "model": DEFAULT_MODEL,
        "messages": HELLO,
        "max_tokens": 12,
        "stream": True,
        "stream_options": {"include_usage": True},
        **GREEDY,
    }
    chunks = list(openai_client.chat.completions.create(**body))
    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is chunks[-1], "the usage chunk is not the last one"
    assert chunks[-1].choices == []
    assert all(chunk.choices for chunk in chunks[:-1])
    usage = chunks[-1].usage
    assert usage is not None
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks[:-1])
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert text.strip()
    assert chunks[-2].choices[0].finish_reason in FINISH_REASONS

    # The SDK hides [DONE]: on the wire the usage record is the one right before it.
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        records = sse_records(response.read())
    assert records[-1] == b"data: [DONE]"
    payloads = chunk_payloads(records)
    assert payloads[-1]["choices"] == []
    wire_usage = payloads[-1]["usage"]
    assert (wire_usage["prompt_tokens"], wire_usage["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert sum(1 for payload in payloads if payload.get("usage")) == 1


def test_checklist_10_raw_sse_has_no_event_lines_and_ends_with_done(http: httpx.Client) -> None:
    """§7.10 (rules 1 and 9): only ``data: <one-line JSON>\\n\\n`` records, no ``event:`` line (it breaks the SDK),
    and the last record is exactly ``data: [DONE]\\n\\n`` (huggingface_hub needs the space)."""
    body = {
        "model": DEFAULT_MODEL,
        "messages": HELLO,
        "max_tokens": 12,
        "stream": True,
        "stream_options": {"include_usage": True},
        **GREEDY,
    }
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers.get("x-request-id")
        raw = response.read()
    assert b"\r" not in raw
    assert not raw.startswith(b"event:") and b"\nevent:" not in raw, "SSE event: lines break the openai SDK"
    records = sse_records(raw)
    assert raw.endswith(b"data: [DONE]\n\n")
    assert records.count(b"data: [DONE]") == 1
    payloads = chunk_payloads(records)

    usage_chunks = [p for p in payloads if p.get("usage")]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is payloads[-1], "usage must be the last chunk before [DONE]"
    assert payloads[-1]["choices"] == []
    usage = payloads[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] > 0

    content_chunks = payloads[:-1]
    for payload in payloads:
        assert payload["object"] == "chat.completion.chunk"
        assert payload["model"] == DEFAULT_MODEL
    assert len({p["id"] for p in payloads}) == 1
    deltas = [p["choices"][0]["delta"] for p in content_chunks]
    assert deltas[0].get("role") == "assistant"
    assert all("role" not in delta for delta in deltas[1:])
    finish = [p["choices"][0]["finish_reason"] for p in content_chunks]
    assert all("finish_reason" in p["choices"][0] for p in content_chunks), "finish_reason must be explicit"
    assert finish[-1] in FINISH_REASONS and all(reason is None for reason in finish[:-1])
    assert content_chunks[-1]["choices"][0]["delta"] == {}


def test_chat_stream_without_include_usage_has_no_usage_chunk(http: httpx.Client) -> None:
    body = {"model": DEFAULT_MODEL, "messages": HELLO, "max_tokens": 8, "stream": True, **GREEDY}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        raw = response.read()
    payloads = chunk_payloads(sse_records(raw))
    assert all(p["choices"] for p in payloads)
    assert not any(p.get("usage") for p in payloads)


async def test_async_client_stream_and_parallel_slots(async_openai_client: openai.AsyncOpenAI) -> None:
    stream = await async_openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=HELLO, max_tokens=8, stream=True, **GREEDY
    )
    roles: list[str | None] = []
    text = ""
    async for chunk in stream:
        if chunk.choices:
            roles.append(chunk.choices[0].delta.role)
            text += chunk.choices[0].delta.content or ""
    assert roles[0] == "assistant" and roles.count("assistant") == 1
    assert text.strip()

    # As many requests at once as the profile has slots (parallel: 2): both are served.
    results = await asyncio.gather(
        *(
            async_openai_client.chat.completions.create(
                model=DEFAULT_MODEL, messages=[{"role": "user", "content": topic}], max_tokens=8, **GREEDY
            )
            for topic in ("Name a fruit.", "Name a river.")
        )
    )
    for result in results:
        assert result.choices[0].message.content
        assert result.usage is not None and result.usage.completion_tokens > 0


# --- legacy completions --------------------------------------------------------------------------------


PROMPT = "The three primary colors are"


def test_completions_non_streamed_and_streamed_agree(openai_client: openai.OpenAI) -> None:
    whole = openai_client.completions.create(model=DEFAULT_MODEL, prompt=PROMPT, max_tokens=12, **GREEDY)
    assert whole.object == "text_completion"
    assert whole.model == DEFAULT_MODEL
    choice = whole.choices[0]
    assert choice.text.strip()
    assert choice.finish_reason in {"stop", "length"}
    assert whole.usage is not None
    assert 0 < whole.usage.completion_tokens <= 12
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    stream = openai_client.completions.create(
        model=DEFAULT_MODEL,
        prompt=PROMPT,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        **GREEDY,
    )
    chunks = list(stream)
    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    text = "".join(chunk.choices[0].text for chunk in chunks[:-1])
    assert text == choice.text
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-2].choices[0].finish_reason == choice.finish_reason


def test_completions_default_max_tokens_is_16(openai_client: openai.OpenAI) -> None:
    whole = openai_client.completions.create(
        model=DEFAULT_MODEL, prompt=PROMPT, extra_body={"ignore_eos": True}, **GREEDY
    )
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 16
    assert whole.choices[0].finish_reason == "length"


def test_completions_raw_stream_framing(http: httpx.Client) -> None:
    body = {"model": DEFAULT_MODEL, "prompt": PROMPT, "max_tokens": 6, "stream": True, **GREEDY}
    with http.stream("POST", "/v1/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read()
    assert b"\nevent:" not in raw and not raw.startswith(b"event:")
    payloads = chunk_payloads(sse_records(raw))
    assert payloads and all(p["object"] == "text_completion" for p in payloads)
    assert len({p["id"] for p in payloads}) == 1


# --- embeddings ----------------------------------------------------------------------------------------


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_checklist_07_embeddings_base64_default_equals_float(server: LlmhostServer, http: httpx.Client) -> None:
    """§7.7 (rule 13): the SDK asks for base64 unless told otherwise and decodes little-endian float32; the vector
    must equal the ``encoding_format="float"`` one within 1e-6."""
    sent: list[dict[str, Any]] = []

    def record_body(request: httpx.Request) -> None:
        sent.append(json.loads(request.content))

    text = "The quick brown fox jumps over the lazy dog."
    with openai.OpenAI(
        base_url=f"{server.base_url}/v1",
        api_key="test",
        max_retries=0,
        http_client=httpx.Client(timeout=120, event_hooks={"request": [record_body]}),
    ) as client:
        default = client.embeddings.create(model=DEFAULT_MODEL, input=text)
        floats = client.embeddings.create(model=DEFAULT_MODEL, input=text, encoding_format="float")
    assert [body["encoding_format"] for body in sent] == ["base64", "float"]
    a = np.asarray(default.data[0].embedding, dtype=np.float64)
    b = np.asarray(floats.data[0].embedding, dtype=np.float64)
    assert a.shape == b.shape and a.shape[0] >= 64
    assert np.all(np.isfinite(a)) and np.linalg.norm(a) > 0
    assert np.max(np.abs(a - b)) <= 1e-6
    assert floats.usage.prompt_tokens > 0
    assert floats.usage.total_tokens == floats.usage.prompt_tokens

    # On the wire the base64 form really is little-endian float32 text.
    raw = http.post("/v1/embeddings", json={"model": DEFAULT_MODEL, "input": text, "encoding_format": "base64"})
    assert raw.status_code == 200
    encoded = raw.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert np.max(np.abs(decoded - b)) <= 1e-6


def test_embeddings_batch_is_position_independent(openai_client: openai.OpenAI) -> None:
    inputs = ["red apples", "A completely different sentence about ships.", "42"]
    batch = openai_client.embeddings.create(model=DEFAULT_MODEL, input=inputs, encoding_format="float")
    assert [item.index for item in batch.data] == [0, 1, 2]
    singles = [
        openai_client.embeddings.create(model=DEFAULT_MODEL, input=text, encoding_format="float") for text in inputs
    ]
    vectors = [np.asarray(item.embedding) for item in batch.data]
    for vector, single in zip(vectors, singles, strict=True):
        assert _cosine(vector, np.asarray(single.data[0].embedding)) > 0.9999
    # and the inputs are not all mapped to one vector
    assert _cosine(vectors[0], vectors[1]) < 0.9999
    assert batch.usage.prompt_tokens == sum(single.usage.prompt_tokens for single in singles)


# --- models --------------------------------------------------------------------------------------------


def test_models_list_and_retrieve(openai_client: openai.OpenAI) -> None:
    ids = [model.id for model in openai_client.models.list()]
    assert DEFAULT_MODEL in ids
    model = openai_client.models.retrieve(DEFAULT_MODEL)
    assert model.id == DEFAULT_MODEL
    assert model.object == "model"
    assert isinstance(model.created, int) and model.created > 0
    assert model.owned_by
    assert model.model_extra is not None and model.model_extra.get("max_model_len") == 2048


def test_checklist_01_models_retrieve_slash_colon_id_raw_and_percent_encoded(
    openai_client: openai.OpenAI, http: httpx.Client
) -> None:
    """§7.1 (rule 14): ids with "/" and ":" resolve whether the "/" arrives raw (SDK 1.x) or as %2F (SDK 3.x).
    The list-equals-config half is in test_checklist_openai.py, on a service with only configured models."""
    raw_slash = http.get(f"/v1/models/{ALIAS}")  # openai 1.x sends the "/" as is
    encoded = http.get("/v1/models/" + ALIAS.replace("/", "%2F"))  # openai 3.x sends %2F
    for response in (raw_slash, encoded):
        assert response.status_code == 200, response.text
        assert response.json()["id"] == DEFAULT_MODEL
        assert response.json()["object"] == "model"
    assert openai_client.models.retrieve(ALIAS).id == DEFAULT_MODEL


def test_models_retrieve_unknown_is_404(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.models.retrieve("no-such-model:7b")
    error = info.value
    assert error.status_code == 404
    assert isinstance(error.body, dict)
    assert set(error.body) >= {"message", "type", "param", "code"}
    assert "no-such-model:7b" in error.body["message"]
    assert error.body["code"] == "model_not_found"
    assert error.request_id


# --- structured output ---------------------------------------------------------------------------------


class Person(BaseModel):
    name: str
    age: int


def test_checklist_06_parse_with_pydantic_response_format(openai_client: openai.OpenAI) -> None:
    """§7.6: ``chat.completions.parse(response_format=PydModel)`` sends a json_schema and gets valid JSON back."""
    completion = openai_client.chat.completions.parse(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "Invent a person. Answer as JSON with a name and an age."}],
        response_format=Person,
        max_tokens=64,
        **GREEDY,
    )
    message = completion.choices[0].message
    assert isinstance(message.parsed, Person), message.content
    assert message.parsed.name.strip()
    assert json.loads(message.content or "") == message.parsed.model_dump()


def test_response_format_json_object(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "Give me a JSON object describing a cat."}],
        response_format={"type": "json_object"},
        max_tokens=48,
        extra_body={"stop": ["\n\n\n"]},
        **GREEDY,
    )
    content = completion.choices[0].message.content or ""
    if completion.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content), dict)
    else:
        assert content.lstrip().startswith("{")


def test_server_smoke_after_api_tests(server: LlmhostServer) -> None:
    assert server.proc.poll() is None, server.log_tail()
    assert len(server.engines()) == 1
