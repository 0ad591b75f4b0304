"""Telemetry of a real workload: what the client measured is what /metrics, the JSON views, progress and
`llmhost status` report; history survives a restart."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import DEFAULT_MODEL, LlmhostServer, shutdown_and_check, start_server

pytestmark = pytest.mark.integration

STORY = [{"role": "user", "content": "Tell me a story."}]
TOKENS = 128  # long enough that the jitter of the first and last chunk stays well under 2 %


def stream_chat(base_url: str) -> dict[str, Any]:
    """One streamed chat with a fixed output length; what the client saw."""
    body = {
        "model": DEFAULT_MODEL,
        "messages": STORY,
        "max_tokens": TOKENS,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    arrivals: list[float] = []
    usage: dict[str, int] = {}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=120) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                arrivals.append(time.perf_counter())
            usage = chunk.get("usage") or usage
    tokens = usage["completion_tokens"]
    return {"id": request_id, "usage": usage, "tok_s": (tokens - 1) / (arrivals[-1] - arrivals[0])}


def scrape(base_url: str) -> dict[str, float]:
    """Every sample of /metrics by ``name{labels}``, parsed by prometheus-client's own parser."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f"{k}={v}" for k, v in labels.items()]
    return sum(v for key, v in samples.items() if key.startswith(name + "{") and all(w in key for w in wanted))


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A service of its own, so every count below belongs to this module's workload."""
    # reasoning off: the <think> splitter holds back the first chunks, which would bias the client's own timing
    profile = {"parallel": 2, "ctx": 2048, "threads": 1, "reasoning": "off"}
    running = start_server(tmp_path_factory.mktemp("telemetry"), models={DEFAULT_MODEL: profile})
    try:
        yield running
    finally:
        shutdown_and_check(running)


def test_client_counts_and_speed_agree_with_metrics_and_json(observed: LlmhostServer) -> None:
    before = scrape(observed.base_url)
    runs = [stream_chat(observed.base_url) for _ in range(3)]
    client_tokens = sum(run["usage"]["completion_tokens"] for run in runs)
    client_prompt = sum(run["usage"]["prompt_tokens"] for run in runs)
    assert client_tokens == 3 * TOKENS

    for run in runs:  # per request: the tracker's speed is the client's within 2 %
        progress = httpx.get(f"{observed.base_url}/api/progress/{run['id']}").json()
        assert progress["state"] == "done" and progress["completion_tokens"] == TOKENS
        assert progress["tokens_per_second"] == pytest.approx(run["tok_s"], rel=0.02)

    time.sleep(1.5)  # one engine scrape after the workload
    after = scrape(observed.base_url)
    for name in ("llmhost_completion_tokens_total", "vllm:generation_tokens_total", "llamacpp:tokens_predicted_total"):
        label = {"model_name": DEFAULT_MODEL} if name.startswith("vllm") else {"model": DEFAULT_MODEL}
        assert total(after, name, **label) - total(before, name, **label) == client_tokens, name
    assert total(after, "llmhost_prompt_tokens_total") - total(before, "llmhost_prompt_tokens_total") == client_prompt
    done = total(after, "llmhost_requests_total", dialect="openai", status="done")
    assert done - total(before, "llmhost_requests_total", dialect="openai", status="done") == 3

    apis = httpx.get(f"{observed.base_url}/api/metrics/apis").json()
    openai_row = next(row for row in apis["dialects"] if row["key"] == "openai")
    assert openai_row["completion_tokens"] >= client_tokens
    mean_speed = sum(run["tok_s"] for run in runs) / len(runs)
    assert openai_row["tokens_per_second"]["p50"] == pytest.approx(mean_speed, rel=0.1)
    models = httpx.get(f"{observed.base_url}/api/metrics/models").json()
    assert next(m for m in models["models"] if m["key"] == DEFAULT_MODEL)["completion_tokens"] >= client_tokens


def test_metrics_exposition_families(observed: LlmhostServer) -> None:
    httpx.post(
        f"{observed.base_url}/api/generate",
        json={"model": DEFAULT_MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 4}},
    )
    httpx.post(f"{observed.base_url}/generate", json={"inputs": "hi", "parameters": {"max_new_tokens": 2}})
    httpx.post(f"{observed.base_url}/v1/chat/completions", json={"model": "nope", "messages": STORY})
    samples = scrape(observed.base_url)
    for dialect in ("ollama", "tgi"):
        assert total(samples, "llmhost_requests_total", dialect=dialect, status="done") >= 1, dialect
    assert total(samples, "llmhost_http_responses_total", dialect="openai", code="404") >= 1
    assert f"vllm:num_requests_running{{model_name={DEFAULT_MODEL}}}" in samples  # checklist 11
    assert samples["llmhost_host_memory_total_bytes{}"] > 0
    assert samples[f"llmhost_engine_state{{model={DEFAULT_MODEL},state=ready}}"] == 1
    assert samples["llmhost_gpus{}"] == 0  # a count of GPUs: here there are none
    assert not any(key.startswith("llmhost_gpu_") for key in samples), "no GPU: no GPU gauges, never zeros"
    assert any(key.startswith("llamacpp:prompt_tokens_total{model=") for key in samples)
    assert samples["llmhost_request_ttft_seconds_count{dialect=openai,model=" + DEFAULT_MODEL + "}"] >= 1


def test_progress_is_live_while_streaming(observed: LlmhostServer) -> None:
    body = {"model": DEFAULT_MODEL, "messages": STORY, "max_tokens": 400, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{observed.base_url}/v1/chat/completions", json=body, timeout=120) as response:
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        for _ in range(10):
            next(lines)
        live = httpx.get(f"{observed.base_url}/api/progress/{request_id}").json()
        dashboard = httpx.get(f"{observed.base_url}/api/metrics/dashboard").json()
        for _ in lines:
            pass
    assert live["state"] == "decoding" and live["chunks"] >= 3 and live["ttft_ms"] > 0
    assert request_id in [r["id"] for r in dashboard["active_requests"]]
    final = httpx.get(f"{observed.base_url}/api/progress/{request_id}").json()
    assert final["state"] == "done" and final["completion_tokens"] == 400
    assert httpx.get(f"{observed.base_url}/api/progress/req-unknown").status_code == 404


def test_dashboard_and_gpu_views_say_no_gpu_without_zeros(observed: LlmhostServer) -> None:
    dashboard = httpx.get(f"{observed.base_url}/api/metrics/dashboard").json()
    assert dashboard["gpus"] == [] and dashboard["no_gpu_reason"]
    assert dashboard["host"]["memory_total_mib"] > 0
    engine = next(e for e in dashboard["engines"] if e["model"] == DEFAULT_MODEL)
    assert engine["state"] == "ready" and engine["pid"] and sum(engine["memory_mib"]["CPU"].values()) > 0
    gpu = httpx.get(f"{observed.base_url}/api/metrics/gpu?window=60").json()
    assert gpu["gpus"] == [] and len(gpu["history"]) >= 1
    assert httpx.get(f"{observed.base_url}/api/metrics/gpu?window=-5").status_code == 400


def test_events_stream_at_one_hertz(observed: LlmhostServer) -> None:
    events: list[dict[str, Any]] = []
    started = time.monotonic()
    with httpx.stream("GET", f"{observed.base_url}/api/events", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            if len(events) == 3:
                break
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 5 and all(event["health"] == "ok" for event in events)
    assert events[2]["time"] - events[0]["time"] == pytest.approx(2.0, abs=0.5)


def test_status_cli_shows_engines_and_watch_refreshes(observed: LlmhostServer) -> None:
    command = [sys.executable, "-m", "llmhost", "status", "--url", observed.base_url]
    once = subprocess.run(command, capture_output=True, text=True, timeout=60, env={"COLUMNS": "200", "PATH": ""})
    assert once.returncode == 0, once.stderr
    assert DEFAULT_MODEL in once.stdout and "no GPU detected" in once.stdout and "ready" in once.stdout
    watch = subprocess.run(
        [*command, "--watch", "--interval", "0.2", "--count", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert watch.returncode == 0, watch.stderr
    assert DEFAULT_MODEL in watch.stdout


def test_history_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_server(tmp_path / "one", data_dir=data_dir)
    try:
        run = stream_chat(first.base_url)
    finally:
        shutdown_and_check(first)
    second = start_server(tmp_path / "two", data_dir=data_dir)
    try:
        requests = httpx.get(f"{second.base_url}/api/metrics/apis").json()["requests"]
        kept = next(r for r in requests if r["id"] == run["id"])
        assert kept["completion_tokens"] == TOKENS and kept["state"] == "done"
    finally:
        shutdown_and_check(second)


def test_live_throughput_matches_the_client_under_load(observed: LlmhostServer) -> None:
    """Two clients generate back to back for a few seconds; the dashboard's 1 Hz tokens/s (what `llmhost status`
    shows) agrees with the throughput the clients measured."""
    body = {"model": DEFAULT_MODEL, "messages": STORY, "max_tokens": 64, "ignore_eos": True}
    tokens: list[int] = []
    seen: list[float] = []
    deadline = time.monotonic() + 6

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            reply = await client.post(f"{observed.base_url}/v1/chat/completions", json=body)
            tokens.append(reply.json()["usage"]["completion_tokens"])

    async def watch(client: httpx.AsyncClient) -> None:
        await asyncio.sleep(1.5)  # past the first scrape of the load
        while time.monotonic() < deadline - 0.5:
            snapshot = (await client.get(f"{observed.base_url}/api/metrics/dashboard")).json()
            if snapshot["tokens_per_second"] is not None:
                seen.append(snapshot["tokens_per_second"])
            await asyncio.sleep(1.0)

    async def run() -> float:
        async with httpx.AsyncClient(timeout=60) as client:
            started = time.monotonic()
            await asyncio.gather(client_loop(client), client_loop(client), watch(client))
            return sum(tokens) / (time.monotonic() - started)

    measured = asyncio.run(run())
    assert len(seen) >= 3, seen
    assert sum(seen) / len(seen) == pytest.approx(measured, rel=0.15), (seen, measured)
