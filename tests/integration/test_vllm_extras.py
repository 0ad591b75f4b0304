"""vLLM's server extras against the real engine: /version, /tokenize, /detokenize and the sampling extras."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import DEFAULT_MODEL

pytestmark = pytest.mark.integration


def test_version(http: httpx.Client) -> None:
    response = http.get("/version")
    assert response.status_code == 200
    assert isinstance(response.json()["version"], str)


def test_tokenize_prompt_counts_and_round_trips(http: httpx.Client) -> None:
    text = "Hello world, tokenizers are fun."
    tokenized = http.post("/tokenize", json={"model": DEFAULT_MODEL, "prompt": text, "return_token_strs": True})
    assert tokenized.status_code == 200, tokenized.text
    body = tokenized.json()
    assert body["count"] == len(body["tokens"]) > 3
    assert "".join(body["token_strs"]) == text
    assert body["max_model_len"] == 2048  # the test profile's context per slot
    back = http.post("/detokenize", json={"model": DEFAULT_MODEL, "tokens": body["tokens"]})
    assert back.status_code == 200
    assert back.json() == {"prompt": text}


def test_tokenize_chat_form_applies_the_template(http: httpx.Client) -> None:
    plain = http.post("/tokenize", json={"model": DEFAULT_MODEL, "prompt": "Hi"}).json()
    chat = http.post("/tokenize", json={"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}]})
    assert chat.status_code == 200
    chat_tokens = chat.json()["tokens"]
    assert len(chat_tokens) > plain["count"], "the chat template adds role markers"
    text = http.post("/detokenize", json={"model": DEFAULT_MODEL, "tokens": chat_tokens}).json()["prompt"]
    assert "<|im_start|>user" in text and "Hi" in text


@pytest.mark.parametrize(
    "body",
    [{"model": DEFAULT_MODEL}, {"model": DEFAULT_MODEL, "prompt": "a", "messages": [{"role": "user", "content": "b"}]}],
)
def test_tokenize_needs_exactly_one_input(http: httpx.Client, body: dict[str, object]) -> None:
    response = http.post("/tokenize", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"


def test_detokenize_rejects_negative_tokens(http: httpx.Client) -> None:
    response = http.post("/detokenize", json={"model": DEFAULT_MODEL, "tokens": [1, -5]})
    assert response.status_code == 400


def test_ignore_eos_produces_exactly_max_tokens(http: httpx.Client) -> None:
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 40,
        "ignore_eos": True,
        "temperature": 0,
    }
    reply = http.post("/v1/chat/completions", json=body).json()
    assert reply["usage"]["completion_tokens"] == 40
    assert reply["choices"][0]["finish_reason"] == "length"


def test_top_k_one_is_deterministic_at_high_temperature(http: httpx.Client) -> None:
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 12,
        "temperature": 1.5,
        "top_k": 1,
        "min_p": 0.0,
        "repetition_penalty": 1.1,
    }
    first = http.post("/v1/chat/completions", json={**body, "seed": 1}).json()
    second = http.post("/v1/chat/completions", json={**body, "seed": 2}).json()
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]


@pytest.mark.parametrize("field", ["guided_json", "structured_outputs"])
def test_guided_json_constrains_the_answer(http: httpx.Client, field: str) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["red", "green"]}},
        "required": ["colour"],
        "additionalProperties": False,
    }
    extra = {"guided_json": schema} if field == "guided_json" else {"structured_outputs": {"json": schema}}
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "Pick a colour."}],
        "max_tokens": 32,
        "temperature": 0,
        **extra,
    }
    content = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    assert json.loads(content)["colour"] in ("red", "green")
