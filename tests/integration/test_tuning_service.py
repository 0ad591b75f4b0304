"""Tuning inside a real ``llmhost serve``: a small job on the default model runs its trial engines beside the
serving engine (other ports, other pid files), its events stream over SSE to the end, the best profile is applied
through live configuration (recorded, and the engine restarts with it) and rolled back; a job running when the
service stops resumes at the next start, keeping its finished trials."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import (
    DEFAULT_MODEL,
    LlmhostServer,
    engine_port,
    free_port,
    run_cli,
    shutdown_and_check,
    start_server,
    write_config,
)
from llmhost.tuner.store import TunerStore

pytestmark = pytest.mark.integration

JOB = {
    "model": "default",
    "strategy": "grid",
    "trials": 4,
    "concurrency": 2,
    "requests": 4,
    "warmup": 1,
    "input_tokens": 16,
    "output_tokens": 8,
    "baseline": False,  # the best is then always a search trial: something to apply
    "space": {"parameters": {"parallel": [1, 2], "ubatch": [128, 256]}},
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    running = start_server(tmp_path_factory.mktemp("tuning-service"))
    try:
        yield running
    finally:
        shutdown_and_check(running)


def events_until_end(client: httpx.Client, job_id: str, during: Any = None) -> list[dict[str, Any]]:
    """Follow the job's SSE stream to its end; ``during(event)`` runs on each event."""
    events: list[dict[str, Any]] = []
    with client.stream("GET", f"/admin/tune/jobs/{job_id}/events", timeout=120) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                events.append(event)
                if during is not None:
                    during(event)
    return events


def engine_flags(server: LlmhostServer) -> dict[str, str]:
    argv = server.engine().cmdline()
    return {arg: argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg.startswith("--")}


def test_a_job_in_the_service_streams_applies_and_rolls_back(service: LlmhostServer) -> None:
    with httpx.Client(base_url=service.base_url, timeout=120) as client:
        chat = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert client.post("/v1/chat/completions", json=chat).status_code == 200  # a serving engine is loaded
        serving = service.engine()
        assert client.post("/admin/tune/jobs", json={**JOB, "trials": 0, "preset": "tpu"}).status_code == 400

        started = client.post("/admin/tune/jobs", json=JOB)
        assert started.status_code == 200, started.text
        job_id = started.json()["id"]
        assert started.json()["model"] == DEFAULT_MODEL and started.json()["trials_planned"] == 4
        beside: list[tuple[set[int], int]] = []

        def check_beside(event: dict[str, Any]) -> None:
            if event["kind"] == "trial_progress" and not beside:  # a trial engine is serving the benchmark
                engines = service.engines()
                beside.append(({engine_port(e) for e in engines}, len(list(service.run_dir.glob("engine-*.json")))))
                assert serving.pid in {e.pid for e in engines}

        events = events_until_end(client, job_id, check_beside)
        kinds = [event["kind"] for event in events]
        assert kinds[0] == "snapshot" and kinds[-1] == "job_finished"
        assert kinds.count("trial_finished") == 4
        # the first trial can start before the subscription: the snapshot stands for what came before it
        assert kinds.count("trial_started") in (3, 4)
        assert beside and len(beside[0][0]) == 2 and beside[0][1] == 2  # two engines, two ports, two pid files

        detail = client.get(f"/admin/tune/jobs/{job_id}").json()
        assert detail["status"] == "completed" and not detail["running"]
        assert [t["status"] for t in detail["trials"]] == ["complete"] * 4
        assert all(t["engine"]["pid"] != serving.pid for t in detail["trials"])
        best = detail["best_params"]
        assert detail["best_value"] == max(t["value"] for t in detail["trials"])
        assert set(detail["importance"]) <= {"parallel", "ubatch"} and detail["nothing_to_apply"] is None
        runs = client.get("/admin/bench/runs", params={"source": "tuner"}).json()["runs"]
        assert {t["bench_run_id"] for t in detail["trials"]} <= {run["id"] for run in runs}
        run = client.get(f"/admin/bench/runs/{detail['trials'][0]['bench_run_id']}").json()
        assert run["levels"][0]["level"]["concurrency"] == 2 and run["levels"][0]["requests"] == 4

        applied = client.post(f"/admin/tune/jobs/{job_id}/apply")
        assert applied.status_code == 200, applied.text
        change = applied.json()["change"]
        assert applied.json()["applied"] == best and change["result"] == "applied"
        assert change["restarted"] == [DEFAULT_MODEL]
        history = client.get("/admin/config/history").json()["changes"]
        assert history[-1]["id"] == change["id"] and f"ubatch: {best['ubatch']}" in history[-1]["after"]
        flags = engine_flags(service)  # the engine came back with the applied profile
        assert flags["--parallel"] == str(best["parallel"]) and flags["--ubatch-size"] == str(best["ubatch"])

        undone = client.post(f"/admin/config/rollback/{change['id']}")
        assert undone.status_code == 200 and undone.json()["result"] == "applied"
        flags = engine_flags(service)
        assert flags["--parallel"] == "2" and "--ubatch-size" not in flags  # the configured profile again

        assert client.get("/admin/tune/jobs/tune-nope").status_code == 404
        assert client.post(f"/admin/tune/jobs/{job_id}/stop").status_code == 409  # not running
        assert client.get("/admin/bench/runs/nope").status_code == 404


def test_a_job_running_when_the_service_stops_resumes_at_the_next_start(tmp_path: Path) -> None:
    directory, data_dir = tmp_path / "svc", tmp_path / "data"
    first = start_server(directory, data_dir=data_dir)
    try:
        job = {**JOB, "trials": 3, "space": {"parameters": {"parallel": [1, 2], "ubatch": [128]}}, "baseline": True}
        job_id = httpx.post(f"{first.base_url}/admin/tune/jobs", json=job, timeout=30).json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = httpx.get(f"{first.base_url}/admin/tune/jobs/{job_id}", timeout=30).json()
            if body["trials_done"] >= 1:
                break
            time.sleep(0.2)
        kept = {t["number"]: t for t in body["trials"] if t["status"] == "complete"}
        assert kept, "no trial finished within 60 s"
    finally:
        shutdown_and_check(first)  # SIGTERM mid-job: the trial engine stops with the service
    store = TunerStore(data_dir / "bench.db")
    assert store.get_job(job_id).status == "interrupted"  # type: ignore[union-attr]
    store.close()

    second = start_server(directory, data_dir=data_dir)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            body = httpx.get(f"{second.base_url}/admin/tune/jobs/{job_id}", timeout=30).json()
            if body["status"] == "completed":
                break
            time.sleep(0.3)
        assert body["status"] == "completed", body["status"]
        trials = {t["number"]: t for t in body["trials"]}
        assert sorted(trials) == [0, 1, 2]  # the baseline and both points, each once
        for number, trial in kept.items():  # finished before the restart: kept as they were, not redone
            assert trials[number]["bench_run_id"] == trial["bench_run_id"]
            assert trials[number]["finished_at"] == trial["finished_at"]
        assert all(t["status"] == "complete" for t in trials.values())
    finally:
        shutdown_and_check(second)


SLOW_PROFILE = {DEFAULT_MODEL: {"parallel": 1, "ctx": 2048, "threads": 1}}
CLI_JOB = [
    "tune", "default", "--concurrency", "4", "--requests", "8", "--warmup", "1", "--input", "16", "--output", "8",
    "--strategy", "grid", "--trials", "1", "--no-baseline",  # no baseline: the one trial is applied, however fast
]  # fmt: skip


def cli_space(tmp_path: Path) -> str:
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  parallel: [4]\n", encoding="utf-8")
    return str(space)


def test_tune_without_run_applies_through_the_service_and_rolls_back(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", models=SLOW_PROFILE)
    try:
        config = write_config(tmp_path / "cli", server.data_dir, models=SLOW_PROFILE, port=server.port)
        result = run_cli(*CLI_JOB, "--space", cli_space(tmp_path), "--config", str(config), timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        changes = httpx.get(f"{server.base_url}/admin/config/history", timeout=30).json()["changes"]
        assert len(changes) == 1 and changes[0]["result"] == "applied" and "parallel: 4" in changes[0]["after"]
        out = " ".join(result.stdout.split())  # rich wraps long lines
        assert f"via {server.base_url} (change 1): parallel=4" in out
        assert "roll back with: llmhost tune rollback 1" in out
        undone = run_cli("tune", "rollback", "1", "--config", str(config))
        assert undone.returncode == 0 and "change 1 undone" in undone.stdout, undone.stdout + undone.stderr
        changes = httpx.get(f"{server.base_url}/admin/config/history", timeout=30).json()["changes"]
        assert changes[-1]["source"] == "rollback" and "parallel: 1" in changes[-1]["after"]
    finally:
        shutdown_and_check(server)


def test_tune_without_a_service_writes_the_config_file_through_validation(tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "data", models=SLOW_PROFILE, port=free_port())  # nobody listens
    result = run_cli(*CLI_JOB, "--space", cli_space(tmp_path), "--config", str(config), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert f"via {config} (change 1): parallel=4" in out
    models = yaml.safe_load(config.read_text())["models"]
    assert models[DEFAULT_MODEL] == {**SLOW_PROFILE[DEFAULT_MODEL], "parallel": 4}
    history = (tmp_path / "data" / "config-history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["who"] == "llmhost tune"
    undone = run_cli("tune", "rollback", "1", "--config", str(config))
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert yaml.safe_load(config.read_text())["models"][DEFAULT_MODEL]["parallel"] == 1
