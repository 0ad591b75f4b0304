"""The advisor on a running service: a (fake) two-GPU rig with one x4 link, the real engine serving the real
default model a few requests, so that tokens per second are measured. ``/api/advice`` and ``llmhost advise
--json`` agree, and the efficiency figures follow from the fake GPUs' power and the measured speeds."""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import DEFAULT_MODEL, LlmhostServer, run_cli, shutdown_and_check, start_server

pytestmark = pytest.mark.integration

RIG = [
    {"name": "GPU A", "memory_mib": 8192, "power_draw_w": 50.0},
    {"name": "GPU B", "memory_mib": 8192, "power_draw_w": 70.0, "pcie_width": 4},
]
PRICE = 0.25
REQUESTS = 3


@pytest.fixture(scope="module")
def advised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    advisor = {
        "electricity_price_per_kwh": PRICE,
        "currency": "EUR",
        "api_prices": {"hosted": {"input_per_m": 0.15, "output_per_m": 0.6}},
    }
    running = start_server(tmp_path_factory.mktemp("advisor"), gpu_backend="fake", fake_gpus=RIG, advisor=advisor)
    try:
        for _ in range(REQUESTS):
            body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Count."}], "max_tokens": 24}
            body |= {"ignore_eos": True}
            assert httpx.post(f"{running.base_url}/v1/chat/completions", json=body, timeout=120).status_code == 200
        yield running
    finally:
        shutdown_and_check(running)


def recorded_speeds(server: LlmhostServer) -> list[float]:
    """The speeds telemetry stored for the requests (written by a background thread: wait for all of them)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = httpx.get(f"{server.base_url}/api/metrics/apis?model={DEFAULT_MODEL}&state=done", timeout=10).json()
        speeds = [r["tokens_per_second"] for r in rows["requests"] if r["tokens_per_second"]]
        if len(speeds) >= REQUESTS:
            return speeds
        time.sleep(0.2)
    pytest.fail(f"telemetry stored {len(speeds)} of {REQUESTS} requests")


def advice(server: LlmhostServer, query: str = "") -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/api/advice{query}", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_efficiency_follows_from_the_fake_power_and_the_measured_speed(advised: LlmhostServer) -> None:
    speeds = recorded_speeds(advised)
    body = advice(advised)
    assert body["source"] == "service"
    (row,) = [m for m in body["efficiency"]["models"] if m["model"] == DEFAULT_MODEL]
    # the CPU engine reports host buffers only, so the GPUs are the configured ones: both, 50 + 70 W
    assert (row["gpus"], row["gpus_from"], row["power_w"]) == ([0, 1], "config", 120.0)
    assert row["requests"] == REQUESTS
    speed = statistics.median(speeds)
    assert row["tokens_per_second"] == pytest.approx(speed)
    assert row["joules_per_token"] == pytest.approx(120.0 / speed)
    assert row["cost_per_million_tokens"] == pytest.approx(120.0 / speed * 1e6 / 3.6e6 * PRICE)
    assert body["efficiency"]["api_prices"] == [{"name": "hosted", "input_per_m": 0.15, "output_per_m": 0.6}]

    kinds = {(r["kind"], r["subject"]) for r in body["recommendations"]}
    assert ("pcie_link_below_max", "GPU 1") in kinds
    # honest about this machine: configured for the fake GPUs, the CPU engine's buffers are in host memory
    assert ("engine_on_cpu", DEFAULT_MODEL) in kinds
    (fit,) = [f for f in body["fit"] if f["model"] == DEFAULT_MODEL]
    assert fit["configured"]["engine_mib"] is not None and set(fit["configured"]["engine_mib"]) == {"host"}
    (ctx,) = [c for c in body["contexts"] if c["model"] == DEFAULT_MODEL]
    assert (ctx["true_context"], ctx["ollama_num_ctx"], ctx["ctx_per_slot"], ctx["slots"]) == (8192, None, 2048, 2)
    assert 0 <= body["score"]["value"] <= 100


def test_cli_json_agrees_with_the_api(advised: LlmhostServer) -> None:
    recorded_speeds(advised)
    api = advice(advised)
    result = run_cli("advise", "--json", "--config", str(advised.config_path), "--url", advised.base_url)
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout)
    for body in (api, cli):
        body.pop("generated_at")
    assert cli == api

    text = run_cli("advise", "--config", str(advised.config_path), "--url", advised.base_url)
    assert text.returncode == 0, text.stderr
    assert "measured by the service" in text.stdout and "GPU 1's PCIe link runs at 25% of its maximum" in text.stdout


def test_one_model_and_an_unknown_one(advised: LlmhostServer) -> None:
    assert [f["model"] for f in advice(advised, f"?model={DEFAULT_MODEL}")["fit"]] == [DEFAULT_MODEL]
    response = httpx.get(f"{advised.base_url}/api/advice?model=no-such-model", timeout=10)
    assert response.status_code == 404 and "no-such-model" in response.text
    result = run_cli("advise", "--config", str(advised.config_path), "--url", advised.base_url, "-m", "no-such-model")
    assert result.returncode == 1 and "no-such-model" in result.stderr


def test_keys_any_valid_key_reads_the_advice_like_the_metrics(tmp_path: Path) -> None:
    """Read-only like /api/metrics: a key is needed once keys are configured, but not an admin key; the CLI sends
    --key (or LLMHOST_API_KEY)."""
    reader = "llmh-test-reader-0123456789"
    keys = [{"name": "reader", "key_sha256": "sha256:" + hashlib.sha256(reader.encode()).hexdigest()}]
    running = start_server(tmp_path / "keys", auth={"keys": keys})
    try:
        url = f"{running.base_url}/api/advice"
        assert httpx.get(url, timeout=30).status_code == 401
        assert httpx.get(url, headers={"authorization": f"Bearer {reader}"}, timeout=30).status_code == 200
        args = ("advise", "--json", "--config", str(running.config_path), "--url", running.base_url)
        refused = run_cli(*args)
        assert refused.returncode == 1 and "API key" in refused.stderr
        allowed = run_cli(*args, "--key", reader)
        assert allowed.returncode == 0 and json.loads(allowed.stdout)["source"] == "service"
    finally:
        shutdown_and_check(running)
