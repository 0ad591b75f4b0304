"""Bad requests get OpenAI-shaped errors with the right status, and the service keeps serving."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from conftest import DEFAULT_MODEL, MAX_REQUEST_BYTES, LlmhostServer

pytestmark = pytest.mark.integration

HI = [{"role": "user", "content": "hi"}]


def assert_openai_error(response: httpx.Response, status: int, *, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id", "").startswith("req-"), dict(response.headers)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    if param is not None:
        assert error["param"] == param, error
    return error


def test_bad_json_body_is_400(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions", content=b'{"model": "x", "messages": [', headers={"content-type": "application/json"}
    )
    error = assert_openai_error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]


def test_empty_and_non_object_bodies_are_400(http: httpx.Client) -> None:
    assert_openai_error(http.post("/v1/chat/completions", content=b""), 400)
    assert_openai_error(http.post("/v1/chat/completions", json=[1, 2, 3]), 400)
    assert_openai_error(http.post("/v1/embeddings", json="text"), 400)


@pytest.mark.parametrize(
    ("override", "param"),
    [
        ({"messages": "hi"}, "messages"),
        ({"max_tokens": "x"}, "max_tokens"),
        ({"temperature": 5}, "temperature"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, None),
        ({"n": 3}, "n"),
    ],
)
def test_checklist_08_bad_input_raises_bad_request(
    openai_client: openai.OpenAI, override: dict[str, Any], param: str | None
) -> None:
    """§7.8: wrong types and out-of-range values raise the SDK's BadRequestError with a full error body."""
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model=DEFAULT_MODEL, messages=HI, max_tokens=4, extra_body=override)
    error = info.value
    assert error.status_code == 400
    assert isinstance(error.body, dict) and set(error.body) >= {"message", "type", "param", "code"}
    assert error.body["type"] == "invalid_request_error"
    if param is not None:
        assert error.body["param"] == param, error.body
    assert error.request_id


def test_checklist_08_unknown_model_raises_not_found_with_full_error_body(openai_client: openai.OpenAI) -> None:
    """§7.8: an unknown model raises NotFoundError on every route; ``e.body`` has message, type, param and code."""
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.chat.completions.create(model="no-such-model:1b", messages=HI, max_tokens=4)
    body = info.value.body
    assert isinstance(body, dict)
    assert set(body) >= {"message", "type", "param", "code"}, body
    assert body["type"] == info.value.type == "invalid_request_error"
    assert body["code"] == info.value.code == "model_not_found"
    assert body["param"] == "model"
    assert "no-such-model:1b" in body["message"]
    assert info.value.request_id

    with pytest.raises(openai.NotFoundError):
        openai_client.embeddings.create(model="no-such-model:1b", input="x")
    with pytest.raises(openai.NotFoundError):
        openai_client.completions.create(model="no-such-model:1b", prompt="x", max_tokens=4)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "models/../../secret", "~/x.gguf", "a\\b"])
def test_path_like_model_names_are_400(http: httpx.Client, name: str) -> None:
    chat = http.post("/v1/chat/completions", json={"model": name, "messages": HI, "max_tokens": 4})
    assert_openai_error(chat, 400, param="model")
    embed = http.post("/v1/embeddings", json={"model": name, "input": "x"})
    assert_openai_error(embed, 400, param="model")
    completion = http.post("/v1/completions", json={"model": name, "prompt": "x", "max_tokens": 4})
    assert_openai_error(completion, 400, param="model")


def test_path_like_model_names_in_the_models_route_are_400(http: httpx.Client) -> None:
    assert_openai_error(http.get("/v1/models/%2Fetc%2Fpasswd"), 400, param="model")
    assert_openai_error(http.get("/v1/models/..%2F..%2Fetc%2Fpasswd"), 400, param="model")


def test_body_over_max_request_bytes_is_413(http: httpx.Client) -> None:
    big = "x" * (2 * MAX_REQUEST_BYTES)
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": big}]}
    response = http.post("/v1/chat/completions", json=body)
    error = assert_openai_error(response, 413)
    assert error["type"] == "invalid_request_error"


def test_chunked_body_over_max_request_bytes_is_413(http: httpx.Client) -> None:
    """No content-length: the limit must hold while reading the stream too."""
    piece = b"x" * 65536
    chunks = 2 * MAX_REQUEST_BYTES // len(piece)

    def body() -> Any:
        yield b'{"model": "' + DEFAULT_MODEL.encode() + b'", "messages": [{"role": "user", "content": "'
        for _ in range(chunks):
            yield piece
        yield b'"}]}'

    try:
        response = http.post("/v1/chat/completions", content=body(), headers={"content-type": "application/json"})
    except httpx.WriteError:
        pytest.fail("the server closed the connection without a 413 answer")
    assert "content-length" not in response.request.headers
    assert_openai_error(response, 413)


def test_unknown_route_is_openai_shaped_404(http: httpx.Client) -> None:
    assert_openai_error(http.post("/v1/no-such-route", json={}), 404)


def test_stream_options_without_stream_is_400(http: httpx.Client) -> None:
    body = {"model": DEFAULT_MODEL, "messages": HI, "stream_options": {"include_usage": True}}
    assert_openai_error(http.post("/v1/chat/completions", json=body), 400, param="stream_options")


def test_errors_have_distinct_request_ids(http: httpx.Client) -> None:
    ids = {http.post("/v1/chat/completions", content=b"nope").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_service_keeps_serving_after_bad_requests(
    http: httpx.Client, openai_client: openai.OpenAI, server: LlmhostServer
) -> None:
    for _ in range(3):
        http.post("/v1/chat/completions", content=b"{")
        http.post("/v1/chat/completions", json={"model": "../x", "messages": HI})
        http.post("/v1/chat/completions", json={"model": DEFAULT_MODEL, "messages": "hi"})
    completion = openai_client.chat.completions.create(model=DEFAULT_MODEL, messages=HI, max_tokens=4, temperature=0)
    assert completion.choices[0].message.content
    assert server.proc.poll() is None
    assert "Traceback" not in server.log(), server.log_tail()
