"""Checklist items of api-compat.md §7 that need a service of their own: one whose model list is exactly its
configuration (item 1), with models that fail the ways item 9 is about: a full queue (429), an engine that cannot
start (503, worth retrying later) and a model too big to ever fit in memory (a permanent 503).

The other items live next to the tests of their feature, named ``test_checklist_NN_*``: 2, 3, 4, 6, 7, 10 and the
raw/%2F half of 1 in test_openai_api.py, 5 in test_tool_calls.py, 8 in test_errors.py, 11 and 12 in
test_vllm_extras.py, 13 in test_reasoning_tags.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import LlmhostServer, model_file, shutdown_and_check, start_server

pytestmark = pytest.mark.integration

ONE_SLOT = "org/one-slot:q4"
ONE_SLOT_ALIAS = "team/slot:latest"
BROKEN_ENGINE = "org/broken-engine:test"
TOO_BIG = "org/too-big:test"
CONFIGURED = (ONE_SLOT, BROKEN_ENGINE, TOO_BIG)
HI: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    """A service that knows only its configured models (no model directory to discover more in), one slot and no
    queue per model, so that a second request while one runs is refused at once."""
    weights = str(model_file())
    models = {
        ONE_SLOT: {"path": weights, "parallel": 1, "ctx": 2048, "threads": 1, "aliases": [ONE_SLOT_ALIAS]},
        BROKEN_ENGINE: {"path": weights, "ctx": 512, "threads": 1, "extra_args": ["--no-such-llama-flag"]},
        # 64 slots of 10M tokens need terabytes of KV cache: no host has that, even with every other model gone.
        TOO_BIG: {"path": weights, "ctx": 10_000_000, "parallel": 64, "threads": 1},
    }
    running = start_server(
        tmp_path_factory.mktemp("llmhost-checklist"),
        models=models,
        model_dirs=[str(tmp_path_factory.mktemp("no-model-files"))],
        scheduler={"queue_size": 0},
    )
    try:
        yield running
    finally:
        shutdown_and_check(running)


def recording_sdk(server: LlmhostServer, **options: Any) -> tuple[openai.OpenAI, list[httpx.Request]]:
    """The real openai SDK (its default retries unless ``options`` say otherwise) with every HTTP attempt it makes
    recorded through an httpx event hook."""
    attempts: list[httpx.Request] = []
    http_client = httpx.Client(timeout=60, event_hooks={"request": [attempts.append]})
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="test", http_client=http_client, **options)
    return client, attempts


def test_checklist_01_models_list_ids_equal_configured_models(configured: LlmhostServer) -> None:
    """§7.1: ``models.list()`` ids are exactly the configured models (aliases are not extra models), and
    ``models.retrieve`` finds each id with "/" and ":", which SDK 3.x sends as %2F."""
    client, attempts = recording_sdk(configured, max_retries=0)
    with client:
        assert sorted(model.id for model in client.models.list()) == sorted(CONFIGURED)
        for name in CONFIGURED:
            assert client.models.retrieve(name).id == name
        assert client.models.retrieve(ONE_SLOT_ALIAS).id == ONE_SLOT
    assert b"/v1/models/org%2Fone-slot:q4" in [request.url.raw_path for request in attempts]
    for name in CONFIGURED:  # SDK 1.x sends the "/" as is
        raw = httpx.get(f"{configured.base_url}/v1/models/{name}", timeout=10)
        assert raw.status_code == 200 and raw.json()["id"] == name


def test_checklist_09_engine_that_cannot_start_is_503_with_retry_after(configured: LlmhostServer) -> None:
    """§7.9 (rule 12): an engine that failed to start may start next time: 503 with a ``retry-after`` the SDK
    honours (0 < seconds <= 60), and no ``x-should-retry: false``."""
    client, attempts = recording_sdk(configured, max_retries=0)
    with client, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=BROKEN_ENGINE, messages=HI, max_tokens=4)
    assert info.value.status_code == 503
    assert 0 < float(info.value.response.headers["retry-after"]) <= 60
    assert info.value.response.headers.get("x-should-retry") != "false"
    assert "--no-such-llama-flag" in info.value.message, "the engine's own complaint reaches the caller"
    assert len(attempts) == 1


def test_checklist_09_full_queue_is_429_with_retry_after(configured: LlmhostServer) -> None:
    """§7.9 (rule 12): with the only slot busy and no queue, a request gets 429 with ``retry-after``, and the SDK
    retries it after that wait (which also shows the attempt log sees retries)."""
    hold = {"model": ONE_SLOT, "messages": HI, "max_tokens": 1500, "ignore_eos": True, "stream": True}
    client, attempts = recording_sdk(configured, max_retries=1)
    with (
        client,
        httpx.Client(base_url=configured.base_url, timeout=60) as raw,
        raw.stream("POST", "/v1/chat/completions", json=hold) as busy,
    ):
        assert busy.status_code == 200
        received = busy.iter_raw()  # keep it referenced: a collected iterator closes the connection
        assert next(received).startswith(b"data: ")  # the one slot is generating; leaving the block cancels it
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=ONE_SLOT, messages=HI, max_tokens=4)
    assert info.value.status_code == 429
    assert 0 < float(info.value.response.headers["retry-after"]) <= 60
    assert info.value.code == "queue_full"
    assert [request.headers["x-stainless-retry-count"] for request in attempts] == ["0", "1"]


def test_checklist_09_permanent_5xx_says_do_not_retry_and_the_sdk_tries_once(configured: LlmhostServer) -> None:
    """§7.9 (rule 12): a model that can never fit fails for good: a 5xx with ``x-should-retry: false``, so the SDK
    with its default ``max_retries`` (2, i.e. up to 3 attempts) makes exactly one."""
    client, attempts = recording_sdk(configured)
    assert client.max_retries == 2
    with client, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=TOO_BIG, messages=HI, max_tokens=4)
    assert info.value.status_code >= 500
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.code == "insufficient_memory"
    assert isinstance(info.value.body, dict) and set(info.value.body) >= {"message", "type", "param", "code"}
    assert len(attempts) == 1, f"the SDK made {len(attempts)} attempts"
