"""vLLM's server extras against the real engine: /health, /version, /tokenize, /detokenize, and the sampling
extras sent the way vLLM users send them (the openai SDK's ``extra_body``), each with an observable effect."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from conftest import DEFAULT_MODEL

pytestmark = pytest.mark.integration

COLOUR = [{"role": "user", "content": "Name a colour."}]
SEEDS = (1, 2, 3)


def chat_text(client: openai.OpenAI, messages: Any, extra: dict[str, Any], **sampling: Any) -> str:
    reply = client.chat.completions.create(model=DEFAULT_MODEL, messages=messages, extra_body=extra, **sampling)
    return reply.choices[0].message.content or ""


def answers_per_seed(client: openai.OpenAI, extra: dict[str, Any]) -> set[str]:
    """The distinct answers of one request sampled hot with several seeds."""
    return {chat_text(client, COLOUR, extra, max_tokens=12, temperature=1.5, seed=seed) for seed in SEEDS}


def test_checklist_11_health_is_empty_200_and_version_is_a_string(http: httpx.Client) -> None:
    """§7.11: vLLM's ``/health`` answers 200 with an empty body; ``/version`` is ``{"version": str}``."""
    health = http.get("/health")
    assert health.status_code == 200
    assert health.content == b""
    version = http.get("/version")
    assert version.status_code == 200
    assert set(version.json()) == {"version"}
    assert isinstance(version.json()["version"], str) and version.json()["version"]


def test_checklist_11_tokenize_count_matches_tokens_and_detokenize_round_trips(http: httpx.Client) -> None:
    """§7.11: ``/tokenize`` reports ``count == len(tokens)`` and ``/detokenize`` gives the same text back."""
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


def test_checklist_12_ignore_eos_generates_exactly_max_tokens(openai_client: openai.OpenAI) -> None:
    """§7.12: ``ignore_eos`` keeps generating past the end-of-sequence token the short answer stops at."""
    hi = [{"role": "user", "content": "Say hi"}]
    plain = openai_client.chat.completions.create(model=DEFAULT_MODEL, messages=hi, max_tokens=32, temperature=0)
    assert plain.choices[0].finish_reason == "stop", "control: the plain answer must end before max_tokens"
    forced = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=hi, max_tokens=32, temperature=0, extra_body={"ignore_eos": True}
    )
    assert forced.usage is not None and forced.usage.completion_tokens == 32
    assert forced.choices[0].finish_reason == "length"


def test_checklist_12_top_k_one_is_deterministic_at_high_temperature(openai_client: openai.OpenAI) -> None:
    """§7.12: ``top_k: 1`` leaves only the likeliest token, so the seed no longer matters at temperature 1.5."""
    assert len(answers_per_seed(openai_client, {"top_k": 0})) > 1, "control: without top_k the seeds must differ"
    assert len(answers_per_seed(openai_client, {"top_k": 1})) == 1


def test_checklist_12_min_p_one_is_deterministic_at_high_temperature(openai_client: openai.OpenAI) -> None:
    """§7.12: ``min_p: 1.0`` drops every token less likely than the best one: the seed no longer matters."""
    assert len(answers_per_seed(openai_client, {"min_p": 0.0})) > 1, "control: without min_p the seeds must differ"
    assert len(answers_per_seed(openai_client, {"min_p": 1.0})) == 1


def test_checklist_12_repetition_penalty_suppresses_repeated_tokens(openai_client: openai.OpenAI) -> None:
    """§7.12: asked to repeat a word, the greedy answer repeats it; a high ``repetition_penalty`` stops that."""
    ask = [{"role": "user", "content": "Repeat exactly: " + " ".join(["apple"] * 10)}]

    def apples(penalty: float) -> int:
        text = chat_text(openai_client, ask, {"repetition_penalty": penalty}, max_tokens=24, temperature=0)
        return text.lower().count("apple")

    unpenalised, penalised = apples(1.0), apples(2.0)
    assert unpenalised >= 10
    assert penalised <= unpenalised // 2, (unpenalised, penalised)


COLOUR_SCHEMA = {
    "type": "object",
    "properties": {"colour": {"type": "string", "enum": ["red", "green"]}},
    "required": ["colour"],
    "additionalProperties": False,
}


def follows_colour_schema(content: str) -> bool:
    try:
        value = json.loads(content)
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) == {"colour"} and value["colour"] in ("red", "green")


@pytest.mark.parametrize(
    "extra",
    [{"structured_outputs": {"json": COLOUR_SCHEMA}}, {"guided_json": COLOUR_SCHEMA}],
    ids=["structured_outputs.json", "guided_json"],
)
def test_checklist_12_structured_outputs_json_and_guided_json_constrain_the_answer(
    openai_client: openai.OpenAI, extra: dict[str, Any]
) -> None:
    """§7.12: vLLM's ``structured_outputs.json`` and the legacy ``guided_json`` both force the schema."""
    pick = [{"role": "user", "content": "Pick a colour."}]
    assert not follows_colour_schema(chat_text(openai_client, pick, {}, max_tokens=32, temperature=0)), "control"
    assert follows_colour_schema(chat_text(openai_client, pick, extra, max_tokens=32, temperature=0))
