"""API keys with the real clients: 401/403 in each dialect, allowed models, requests/tokens per minute and
parallel limits as 429 with Retry-After, admin-only actions, open liveness routes, and `llmhost keys add`."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest
import text_generation
import yaml
from huggingface_hub import InferenceClient

from conftest import DEFAULT_MODEL, LlmhostServer, clean_env, shutdown_and_check, start_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning"),
]

KEYS = {name: f"llmh-test-{name}-0123456789" for name in ("admin", "alice", "bob", "carl", "dave")}
HI = [{"role": "user", "content": "hi"}]


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    keys = [
        {"name": "admin", "key_sha256": digest(KEYS["admin"]), "admin": True},
        {"name": "alice", "key_sha256": digest(KEYS["alice"]), "models": [DEFAULT_MODEL], "rpm": 4},
        {"name": "bob", "key_sha256": digest(KEYS["bob"]), "models": ["other-*"]},
        {"name": "carl", "key_sha256": digest(KEYS["carl"]), "max_parallel": 1},
        {"name": "dave", "key_sha256": digest(KEYS["dave"]), "tpm": 40},
    ]
    running = start_server(tmp_path_factory.mktemp("guarded"), auth={"keys": keys})
    try:
        yield running
    finally:
        shutdown_and_check(running)


def sdk(server: LlmhostServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key, max_retries=0, timeout=60)


def chat(server: LlmhostServer, key: str) -> str | None:
    reply = sdk(server, key).chat.completions.create(model=DEFAULT_MODEL, messages=HI, max_tokens=4)  # type: ignore[arg-type]
    return reply.choices[0].message.content


def test_checklist_08_openai_bad_or_missing_key_is_authentication_error(guarded: LlmhostServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(guarded, "llmh-wrong")
    assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    assert httpx.post(f"{guarded.base_url}/v1/chat/completions", json={}).status_code == 401
    assert chat(guarded, KEYS["admin"])


def test_every_dialect_sends_its_key_the_way_its_client_does(guarded: LlmhostServer) -> None:
    key = KEYS["carl"]
    with pytest.raises(ollama.ResponseError) as caught:
        ollama.Client(host=guarded.base_url).chat(model=DEFAULT_MODEL, messages=HI)
    assert caught.value.status_code == 401
    keyed = ollama.Client(host=guarded.base_url, headers={"Authorization": f"Bearer {key}"})
    assert keyed.chat(model=DEFAULT_MODEL, messages=HI, options={"num_predict": 4}).done
    assert InferenceClient(model=guarded.base_url, token=key).text_generation("Hi", max_new_tokens=4)
    with pytest.raises(Exception) as denied:
        InferenceClient(model=guarded.base_url, token="llmh-wrong").text_generation("Hi", max_new_tokens=4)
    assert "401" in str(denied.value)
    tgi = text_generation.Client(guarded.base_url, headers={"Authorization": f"Bearer {key}"})
    assert tgi.generate("Hi", max_new_tokens=4).generated_text is not None
    assert (
        httpx.post(
            f"{guarded.base_url}/generate",
            headers={"x-api-key": key},
            json={"inputs": "Hi", "parameters": {"max_new_tokens": 4}},
        ).status_code
        == 200
    )


def test_models_a_key_may_not_use_are_403(guarded: LlmhostServer) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        chat(guarded, KEYS["bob"])
    assert "may not use the model" in caught.value.message


def test_requests_per_minute_is_429_with_retry_after(guarded: LlmhostServer) -> None:
    client = sdk(guarded, KEYS["alice"])
    for _ in range(4):
        assert client.models.list().data  # GETs are not metered
        assert chat(guarded, KEYS["alice"])
    with pytest.raises(openai.RateLimitError) as caught:
        chat(guarded, KEYS["alice"])
    retry_after = int(caught.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60 and "requests per minute" in caught.value.message


def test_parallel_requests_beyond_the_key_limit_are_429(guarded: LlmhostServer) -> None:
    key = KEYS["carl"]
    body = {"model": DEFAULT_MODEL, "messages": HI, "max_tokens": 300, "ignore_eos": True, "stream": True}
    with httpx.stream(
        "POST", f"{guarded.base_url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    ) as response:
        lines = response.iter_lines()  # kept: a discarded iterator would close the stream
        next(lines)
        second = httpx.post(
            f"{guarded.base_url}/v1/chat/completions",
            json={**body, "stream": False, "max_tokens": 2},
            headers={"authorization": f"Bearer {key}"},
        )
    assert second.status_code == 429 and second.headers["retry-after"]
    assert second.json()["error"]["code"] == "key_parallel"
    assert chat(guarded, key)  # the first one ended: the slot is free again


def test_tokens_per_minute_is_429_once_used_up(guarded: LlmhostServer) -> None:
    key = KEYS["dave"]
    reply = sdk(guarded, key).chat.completions.create(model=DEFAULT_MODEL, messages=HI, max_tokens=16)  # type: ignore[arg-type]
    assert reply.usage and reply.usage.total_tokens >= 40
    with pytest.raises(openai.RateLimitError) as caught:
        chat(guarded, key)
    assert "tokens per minute" in caught.value.message


def test_admin_actions_need_the_admin_key(guarded: LlmhostServer) -> None:
    base = guarded.base_url
    user = {"authorization": f"Bearer {KEYS['carl']}"}
    assert httpx.get(f"{base}/admin/engines", headers=user).status_code == 403
    assert httpx.post(f"{base}/api/pull", headers=user, json={"model": "x"}).status_code == 403
    assert httpx.request("DELETE", f"{base}/api/delete", headers=user, json={"model": "x"}).json()["error"]
    admin = {"authorization": f"Bearer {KEYS['admin']}"}
    assert httpx.get(f"{base}/admin/engines", headers=admin).status_code == 200


def test_liveness_dashboard_pages_and_metrics_stay_open(guarded: LlmhostServer) -> None:
    base = guarded.base_url
    assert httpx.get(f"{base}/health").status_code == 200 and httpx.head(f"{base}/").status_code == 200
    assert httpx.get(f"{base}/metrics").status_code == 200
    assert httpx.get(f"{base}/api/metrics/dashboard").status_code == 401
    with httpx.stream("GET", f"{base}/api/events?key={KEYS['carl']}", timeout=10) as events:
        lines = events.iter_lines()
        assert events.status_code == 200 and next(lines).startswith("data: ")


def test_keys_add_stores_only_the_digest(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    result = subprocess.run(
        [sys.executable, "-m", "llmhost", "keys", "add", "erin", "--config", str(config), "--rpm", "10", "--admin"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env() | {"COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    key = next(word for word in result.stdout.split() if word.startswith("llmh-"))
    stored = (tmp_path / "keys.yaml").read_text()
    assert key not in stored
    entry = yaml.safe_load(stored)["keys"][0]
    assert entry == {"name": "erin", "key_sha256": digest(key), "rpm": 10, "admin": True}
    assert (tmp_path / "keys.yaml").stat().st_mode & 0o077 == 0
