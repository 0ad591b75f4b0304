"""The engine manager's admin API: start with parameters (checked like the config), restart, stop, log tail,
the cap on running engines (429), and the stored per-engine series behind its charts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import DEFAULT_MODEL, LlmhostServer, model_file, shutdown_and_check, start_server

pytestmark = pytest.mark.integration

SECOND = "second-smol"


@pytest.fixture(scope="module")
def managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    profiles = {
        DEFAULT_MODEL: {"parallel": 1, "ctx": 2048, "threads": 1},
        SECOND: {"path": str(model_file()), "parallel": 1, "ctx": 512, "threads": 1},
    }
    running = start_server(tmp_path_factory.mktemp("manager"), models=profiles, scheduler={"max_loaded": 1})
    try:
        yield running
    finally:
        shutdown_and_check(running)


def admin(server: LlmhostServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{server.base_url}/admin{path}", timeout=120, **kwargs)  # type: ignore[arg-type]


def test_profile_schema_describes_the_engine_parameters(managed: LlmhostServer) -> None:
    schema = admin(managed, "GET", "/profile-schema").json()
    assert {"ctx", "parallel", "threads", "flash_attn", "cache_type_k", "tensor_split"} <= set(schema["properties"])


def test_start_with_parameters_then_restart_then_stop(managed: LlmhostServer) -> None:
    started = admin(managed, "POST", f"/models/{DEFAULT_MODEL}/start", json={"overrides": {"ctx": 1024}})
    assert started.status_code == 200, started.text
    status = started.json()
    argv = status["argv"]
    assert status["state"] == "ready" and argv[argv.index("--ctx-size") + 1] == "1024"

    log = admin(managed, "GET", f"/engines/{DEFAULT_MODEL}/log?lines=50").json()
    assert 0 < len(log["lines"]) <= 50 and any("llama" in line.lower() for line in log["lines"])

    restarted = admin(managed, "POST", f"/models/{DEFAULT_MODEL}/restart").json()
    assert restarted["pid"] != status["pid"] and "1024" in restarted["argv"]  # same parameters

    stopped = admin(managed, "POST", f"/models/{DEFAULT_MODEL}/stop").json()
    assert stopped["unloaded"] is True
    assert not [e for e in admin(managed, "GET", "/engines").json()["engines"] if e["model"] == DEFAULT_MODEL]
    reloaded = admin(managed, "POST", f"/models/{DEFAULT_MODEL}/load").json()  # the manager's ctx is forgotten
    assert reloaded["argv"][reloaded["argv"].index("--ctx-size") + 1] == "2048"
    admin(managed, "POST", f"/models/{DEFAULT_MODEL}/stop")


def test_invalid_parameters_are_400_with_every_reason(managed: LlmhostServer) -> None:
    bad = admin(managed, "POST", f"/models/{DEFAULT_MODEL}/start", json={"overrides": {"ctx": "big", "nope": 1}})
    assert bad.status_code == 400
    message = bad.json()["error"]["message"]
    assert "ctx" in message and "nope" in message
    assert admin(managed, "POST", f"/models/{DEFAULT_MODEL}/start", json={"overrides": [1]}).status_code == 400
    assert admin(managed, "GET", f"/engines/{DEFAULT_MODEL}/log?lines=0").status_code == 400


def test_cap_on_running_engines_is_429_with_the_reason(managed: LlmhostServer) -> None:
    assert admin(managed, "POST", f"/models/{DEFAULT_MODEL}/start", json={}).status_code == 200
    refused = admin(managed, "POST", f"/models/{SECOND}/start", json={})
    assert refused.status_code == 429
    message = refused.json()["error"]["message"]
    assert "at most 1 engine" in message and DEFAULT_MODEL in message
    admin(managed, "POST", f"/models/{DEFAULT_MODEL}/stop")
    assert admin(managed, "POST", f"/models/{SECOND}/start", json={}).status_code == 200
    admin(managed, "POST", f"/models/{SECOND}/stop")


def test_stored_series_for_engine_charts(managed: LlmhostServer) -> None:
    admin(managed, "POST", f"/models/{DEFAULT_MODEL}/start", json={})
    deadline = time.monotonic() + 10
    lines: list[dict[str, object]] = []
    while not lines and time.monotonic() < deadline:
        time.sleep(0.5)
        url = f"{managed.base_url}/api/metrics/series?name=engine_busy_slots&window=60&model={DEFAULT_MODEL}"
        lines = httpx.get(url).json()["lines"]
    assert lines and lines[0]["labels"] == {"model": DEFAULT_MODEL} and lines[0]["points"]
    unknown = httpx.get(f"{managed.base_url}/api/metrics/series?name=nope")
    assert unknown.status_code == 400 and "engine_busy_slots" in unknown.json()["error"]
    admin(managed, "POST", f"/models/{DEFAULT_MODEL}/stop")
