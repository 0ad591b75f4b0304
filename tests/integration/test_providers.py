"""Remote providers with real upstreams started here: two llama-servers (one behind an API key) serving the
same model, and a second llmhost used as an `ollama` and as a `tgi` provider. The front llmhost lists every
model, serves each one in every dialect, fails over, and keeps serving when an upstream dies."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import psutil
import pytest

from conftest import DEFAULT_MODEL, LlmhostServer, free_port, shutdown_and_check, start_server
from engine_probes import running_engine

pytestmark = pytest.mark.integration

SHARED = "smol-remote"  # the alias both llama-servers serve
KEY = "sk-upstream-secret-4242"
HI = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def upstream_llmhost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    running = start_server(tmp_path_factory.mktemp("upstream-llmhost"))
    try:
        yield running
    finally:
        shutdown_and_check(running)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two llama-servers serving SHARED; ``keyed`` requires KEY."""
    logs = tmp_path_factory.mktemp("engines")
    with contextlib.ExitStack() as stack:
        keyed = stack.enter_context(running_engine(logs / "keyed.log", "--alias", SHARED, "--api-key", KEY))
        plain = stack.enter_context(running_engine(logs / "plain.log", "--alias", SHARED))
        yield {"keyed": keyed, "plain": plain}


@pytest.fixture(scope="module")
def front(
    tmp_path_factory: pytest.TempPathFactory, engines: dict[str, str], upstream_llmhost: LlmhostServer
) -> Iterator[LlmhostServer]:
    directory = tmp_path_factory.mktemp("front")
    (directory / "key").write_text(KEY + "\n")
    providers: list[dict[str, Any]] = [
        {"name": "keyed", "kind": "llamacpp", "base_url": engines["keyed"], "api_key_file": str(directory / "key")},
        {"name": "plain", "kind": "openai", "base_url": engines["plain"] + "/v1"},
        {"name": "b", "kind": "ollama", "base_url": upstream_llmhost.base_url, "prefix": "b/", "health_interval": 1},
        {"name": "t", "kind": "tgi", "base_url": upstream_llmhost.base_url, "prefix": "tgi/"},
        {"name": "wrongkey", "kind": "llamacpp", "base_url": engines["keyed"], "api_key": "sk-wrong-0000"},
    ]
    running = start_server(directory, providers=providers)
    try:
        wait_for(lambda: {p["name"]: p["state"] for p in providers_view(running)}.get("b") == "healthy")
        yield running
    finally:
        shutdown_and_check(running)


def providers_view(server: LlmhostServer) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = httpx.get(f"{server.base_url}/admin/providers", timeout=10).json()["providers"]
    return result


def wait_for(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def sdk(server: LlmhostServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="x", max_retries=0, timeout=120)


def test_every_model_of_every_target_is_listed(front: LlmhostServer) -> None:
    ids = {model.id: model.owned_by for model in sdk(front).models.list()}
    assert DEFAULT_MODEL in ids
    assert ids[SHARED].startswith("provider:")
    assert ids[f"b/{DEFAULT_MODEL}"] == "provider:b" and ids[f"tgi/{DEFAULT_MODEL}"] == "provider:t"
    names = [model.model for model in ollama.Client(host=front.base_url).list().models]
    assert {DEFAULT_MODEL, SHARED, f"b/{DEFAULT_MODEL}", f"tgi/{DEFAULT_MODEL}"} <= set(names)
    assert sdk(front).models.retrieve(f"b/{DEFAULT_MODEL}").owned_by == "provider:b"


@pytest.mark.parametrize("model", [SHARED, f"b/{DEFAULT_MODEL}", f"tgi/{DEFAULT_MODEL}"])
def test_remote_models_in_the_openai_and_ollama_dialects(front: LlmhostServer, model: str) -> None:
    client = sdk(front)
    reply = client.chat.completions.create(model=model, messages=HI, max_tokens=8)  # type: ignore[arg-type]
    assert reply.choices[0].message.content and reply.model == model
    chunks = list(client.chat.completions.create(model=model, messages=HI, max_tokens=8, stream=True))  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    ollama_client = ollama.Client(host=front.base_url, timeout=120)
    answer = ollama_client.chat(model=model, messages=HI, options={"num_predict": 8})
    assert answer.message.content and answer.done
    streamed = list(ollama_client.chat(model=model, messages=HI, options={"num_predict": 8}, stream=True))
    assert streamed[-1].done and streamed[-1].eval_count


def test_embeddings_through_a_provider(front: LlmhostServer) -> None:
    vector = sdk(front).embeddings.create(model=f"b/{DEFAULT_MODEL}", input="a lighthouse").data[0].embedding
    assert len(vector) == 576


def test_health_latency_and_a_wrong_key_never_echoed(front: LlmhostServer) -> None:
    wait_for(lambda: all(p["state"] != "unknown" for p in providers_view(front)))
    view = {p["name"]: p for p in providers_view(front)}
    assert view["keyed"]["state"] == "healthy" and view["keyed"]["latency_ms"] > 0
    assert view["wrongkey"]["state"] == "unhealthy" and "401" in view["wrongkey"]["last_error"]
    listing = httpx.get(f"{front.base_url}/admin/providers").text + httpx.get(f"{front.base_url}/v1/models").text
    assert KEY not in listing and "sk-wrong-0000" not in listing
    assert KEY not in front.log() and "sk-wrong-0000" not in front.log()


def test_a_provider_with_the_key_gets_through(front: LlmhostServer, engines: dict[str, str]) -> None:
    denied = httpx.post(f"{engines['keyed']}/v1/chat/completions", json={"messages": HI, "max_tokens": 2})
    assert denied.status_code == 401  # the upstream really checks
    assert providers_view(front)[0]["name"] == "keyed" and providers_view(front)[0]["state"] == "healthy"


def test_discovery_picks_up_a_model_the_upstream_adds(front: LlmhostServer, upstream_llmhost: LlmhostServer) -> None:
    copied = httpx.post(
        f"{upstream_llmhost.base_url}/api/copy", json={"source": DEFAULT_MODEL, "destination": "fresh:latest"}
    )
    assert copied.status_code == 200
    try:
        wait_for(lambda: "b/fresh:latest" in {m.id for m in sdk(front).models.list()}, timeout=10)
        reply = sdk(front).chat.completions.create(model="b/fresh:latest", messages=HI, max_tokens=4)  # type: ignore[arg-type]
        assert reply.choices[0].message.content
    finally:
        httpx.request("DELETE", f"{upstream_llmhost.base_url}/api/delete", json={"model": "fresh:latest"})


# --- failover: its own upstreams, killed here -----------------------------------------------------------


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LlmhostServer, dict[str, psutil.Process]]]:
    """A front with two llama-server providers for SHARED, whose processes the test may kill."""
    with contextlib.ExitStack() as stack:
        urls = {
            name: stack.enter_context(running_engine(tmp_path / f"{name}.log", "--alias", SHARED))
            for name in ("one", "two")
        }
        processes = {name: process_on_port(int(url.rsplit(":", 1)[1])) for name, url in urls.items()}
        providers = [{"name": name, "kind": "llamacpp", "base_url": url} for name, url in urls.items()]
        front = start_server(tmp_path / "front", providers=providers)
        try:
            wait_for(lambda: all(p["state"] == "healthy" for p in providers_view(front)))
            yield front, processes
        finally:
            shutdown_and_check(front)


def process_on_port(port: int) -> psutil.Process:
    for connection in psutil.net_connections("tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
            assert connection.pid is not None
            return psutil.Process(connection.pid)
    raise AssertionError(f"nothing listens on {port}")


def test_failover_before_the_first_byte_is_transparent(pair: tuple[LlmhostServer, dict[str, psutil.Process]]) -> None:
    front, processes = pair
    processes["one"].kill()
    processes["one"].wait(10)
    client = sdk(front)
    for _ in range(6):  # whichever target the router picks first, every request succeeds
        reply = client.chat.completions.create(model=SHARED, messages=HI, max_tokens=4)  # type: ignore[arg-type]
        assert reply.choices[0].message.content
    view = {p["name"]: p for p in providers_view(front)}
    assert view["one"]["state"] == "unhealthy" and view["two"]["state"] == "healthy"


def test_death_mid_stream_is_a_dialect_error_and_the_next_request_goes_to_the_survivor(
    pair: tuple[LlmhostServer, dict[str, psutil.Process]],
) -> None:
    front, processes = pair
    body = {"model": SHARED, "messages": HI, "max_tokens": 2000, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{front.base_url}/v1/chat/completions", json=body, timeout=60) as response:
        lines = (line for line in response.iter_lines() if line)
        for _ in range(4):
            next(lines)
        serving = next(p["name"] for p in providers_view(front) if p["outstanding"] == 1)
        processes[serving].kill()
        rest = list(lines)
    assert rest[-1] == "data: [DONE]" and '"error"' in rest[-2]
    survivor = "two" if serving == "one" else "one"
    for _ in range(3):
        reply = sdk(front).chat.completions.create(model=SHARED, messages=HI, max_tokens=4)  # type: ignore[arg-type]
        assert reply.choices[0].message.content
    view = {p["name"]: p for p in providers_view(front)}
    assert view[serving]["state"] == "unhealthy" and view[survivor]["state"] == "healthy"


def test_an_unreachable_only_target_is_a_clear_503(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    front = start_server(tmp_path / "front", providers=[{"name": "gone", "base_url": dead, "models": ["ghost"]}])
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            sdk(front).chat.completions.create(model="ghost", messages=HI, max_tokens=4)  # type: ignore[arg-type]
        assert caught.value.status_code == 503 and "gone" in caught.value.message
        assert providers_view(front)[0]["state"] == "unhealthy"
    finally:
        shutdown_and_check(front)
