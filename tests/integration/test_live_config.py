"""Live configuration on a real service: a profile change applied while a stream runs (the stream finishes on
the old engine, the next request runs on the new one), invalid changes rejected with nothing changed, a new
engine that fails to start rolled back, YAML hot reload, SIGHUP, rollback, and the change history."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from conftest import DEFAULT_MODEL, LlmhostServer, shutdown_and_check, start_server

pytestmark = pytest.mark.integration


@pytest.fixture
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    running = start_server(tmp_path_factory.mktemp("live"))
    try:
        yield running
    finally:
        shutdown_and_check(running)


def document(server: LlmhostServer) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(server.config_path.read_text())
    return data


def with_profile(server: LlmhostServer, **changes: Any) -> dict[str, Any]:
    data = document(server)
    data["models"][DEFAULT_MODEL] |= changes
    return data


def ctx_of(server: LlmhostServer) -> str | None:
    """The running engine's --ctx-size; None while it is being restarted."""
    engines = httpx.get(f"{server.base_url}/admin/engines").json()["engines"]
    argv: list[str] = next((e["argv"] for e in engines if e["model"] == DEFAULT_MODEL and e["state"] == "ready"), [])
    return argv[argv.index("--ctx-size") + 1] if argv else None


def last_change(server: LlmhostServer, count: int) -> dict[str, Any]:
    """The newest change once ``count`` are recorded (an apply records its result after the restart)."""
    deadline = time.monotonic() + 15
    while True:
        changes: list[dict[str, Any]] = httpx.get(f"{server.base_url}/admin/config/history").json()["changes"]
        if len(changes) >= count or time.monotonic() > deadline:
            return changes[-1]
        time.sleep(0.2)


def chat(server: LlmhostServer) -> None:
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    assert httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60).status_code == 200


def apply(server: LlmhostServer, config: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.base_url}/admin/config/apply", json={"config": config}, timeout=120)


def test_a_profile_change_lets_the_running_stream_finish_then_restarts_the_engine(live: LlmhostServer) -> None:
    chat(live)
    assert ctx_of(live) == "4096"  # 2048 per slot x 2 slots
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}
    body |= {"ignore_eos": True, "stream": True}
    result: dict[str, httpx.Response] = {}
    with httpx.stream("POST", f"{live.base_url}/v1/chat/completions", json=body, timeout=120) as stream:
        lines = stream.iter_lines()
        next(lines)
        applier = threading.Thread(target=lambda: result.update(r=apply(live, with_profile(live, ctx=1024))))
        applier.start()
        rest = [line for line in lines if line]
    applier.join(60)
    assert rest[-1] == "data: [DONE]" and not any('"error"' in line for line in rest), rest[-3:]
    change = result["r"].json()
    assert result["r"].status_code == 200 and change["result"] == "applied" and change["restarted"] == [DEFAULT_MODEL]
    assert "ctx: 1024" in change["diff"]
    chat(live)
    assert ctx_of(live) == "2048"
    assert document(live)["models"][DEFAULT_MODEL]["ctx"] == 1024  # written to the file too


def test_invalid_or_restart_only_changes_are_rejected_and_change_nothing(live: LlmhostServer) -> None:
    chat(live)
    bad = apply(live, with_profile(live, ctx="big", nope=1))
    assert bad.status_code == 400 and "ctx" in bad.json()["error"]["message"]
    checked = httpx.post(f"{live.base_url}/admin/config/validate", json={"config": with_profile(live, ctx=-1)}).json()
    assert checked["valid"] is False and checked["errors"]
    moved = apply(live, document(live) | {"port": 1})
    assert moved.status_code == 400 and "need a restart" in moved.json()["error"]["message"]
    assert ctx_of(live) == "4096"
    results = [c["result"] for c in httpx.get(f"{live.base_url}/admin/config/history").json()["changes"]]
    assert results == ["rejected", "rejected"]


def test_an_engine_that_fails_to_start_brings_the_old_configuration_back(live: LlmhostServer) -> None:
    chat(live)
    failed = apply(live, with_profile(live, extra_args=["--no-such-llama-flag"]))
    assert failed.status_code == 409 and "rolled back" in failed.json()["error"]["message"]
    chat(live)
    assert ctx_of(live) == "4096"
    assert "no-such-llama-flag" not in live.config_path.read_text()
    last = httpx.get(f"{live.base_url}/admin/config/history").json()["changes"][-1]
    assert last["result"] == "rolled_back" and "no-such-llama-flag" in last["error"]


def test_hot_reload_sighup_and_rollback(live: LlmhostServer) -> None:
    chat(live)
    live.config_path.write_text(yaml.safe_dump(with_profile(live, ctx=512), sort_keys=False))
    deadline = time.monotonic() + 15
    while ctx_of(live) != "1024" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert ctx_of(live) == "1024"  # 512 x 2 slots, picked up from the edited file
    change = last_change(live, 1)
    assert change["source"] == "file" and change["result"] == "applied"

    rolled = httpx.post(f"{live.base_url}/admin/config/rollback/{change['id']}", timeout=120).json()
    assert rolled["result"] == "applied" and rolled["source"] == "rollback"
    assert ctx_of(live) == "4096" and document(live)["models"][DEFAULT_MODEL]["ctx"] == 2048

    text = live.config_path.read_text().replace("ctx: 2048", "ctx: 768")
    live.proc.send_signal(signal.SIGHUP)  # also the path a file watcher could miss
    live.config_path.write_text(text)
    live.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while ctx_of(live) != "1536" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert ctx_of(live) == "1536" and live.proc.poll() is None


def test_a_split_on_a_machine_without_gpus_is_refused_clearly(live: LlmhostServer) -> None:
    answer = httpx.post(f"{live.base_url}/admin/models/{DEFAULT_MODEL}/split", json={"preset": "equal"})
    assert answer.status_code == 400 and "no GPU detected" in answer.json()["error"]["message"]
    assert "tensor_split" not in live.config_path.read_text()


def test_keys_that_cannot_be_read_are_refused_before_anything_changes(live: LlmhostServer) -> None:
    config = document(live) | {"auth": {"keys": [{"name": "x", "key_env": "LLMHOST_TEST_UNSET_KEY_VARIABLE"}]}}
    refused = apply(live, config)
    assert refused.status_code == 400 and "LLMHOST_TEST_UNSET_KEY_VARIABLE" in refused.json()["error"]["message"]
    chat(live)  # still open: the keys were not taken
