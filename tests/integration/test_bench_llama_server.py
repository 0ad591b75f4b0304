"""The benchmark against a real llama-server and through llmhost: token counts agree with the engine's own."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from conftest import DEFAULT_MODEL, LlmhostServer, run_cli
from engine_probes import running_engine
from llmhost.bench.client import Target
from llmhost.bench.runner import BenchConfig, BenchEvent, run_benchmark
from llmhost.bench.store import BenchStore
from llmhost.bench.workload import LengthSpec, Level

pytestmark = pytest.mark.integration

ENGINE_FLAGS = ("-c", "2048", "-np", "2", "--metrics")  # override running_engine's -c 1024 -np 1


def tokens_predicted(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    return next(
        float(line.split()[1]) for line in text.splitlines() if line.startswith("llamacpp:tokens_predicted_total ")
    )


def test_sweep_counts_match_the_engine(tmp_path: Path) -> None:
    with running_engine(tmp_path / "engine.log", *ENGINE_FLAGS) as base_url:
        assert len(httpx.get(f"{base_url}/slots", timeout=5).json()) == 2
        levels = (Level(concurrency=1), Level(concurrency=2))
        config = BenchConfig(
            Target(f"{base_url}/v1", "any"), levels, requests=4, warmup=2, lengths=LengthSpec.fixed(48, 32)
        )
        counters: list[float] = []
        events: list[BenchEvent] = []

        def on_event(event: BenchEvent) -> None:
            events.append(event)
            if event.kind == "level_started" and event.level_index == 0:
                counters.append(tokens_predicted(base_url))  # after warm-up, before the first measured request

        run = asyncio.run(run_benchmark(config, on_event))
        counters.append(tokens_predicted(base_url))

    assert counters[1] - counters[0] == sum(level.output_tokens for level in run.levels)
    assert (run.flags.input_source, run.flags.ignore_eos, run.flags.tokenizer) == ("tokenize", "honoured", "llama.cpp")
    assert not run.flags.output_estimated
    for level in run.levels:
        assert (level.completed, level.failed, level.errors) == (4, 0, {})
        assert level.output_tokens == 4 * 32 and level.short_outputs == 0  # ignore_eos: exactly max_tokens
        assert level.input_tokens == 4 * 48  # prompts cut to length with the server's tokenizer
        assert level.ttft_ms is not None and level.tpot_ms is not None and level.itl_ms is not None
        assert level.ttft_ms.p50 < level.e2e_ms.p50  # type: ignore[union-attr]
        assert level.output_throughput > 0 and level.tokens_per_chunk is not None
    assert 0.9 < run.levels[0].observed_concurrency <= 1.01
    assert 1.2 < run.levels[1].observed_concurrency <= 2.01
    assert [e.kind for e in events].count("request_done") == 8
    assert [e.kind for e in events if e.kind != "request_done"][-1] == "level_done"

    store = BenchStore(tmp_path / "bench.db")
    store.save(run)
    again = store.get_run(run.id)
    assert again is not None and again.to_dict() == run.to_dict()
    store.close()


def test_open_loop_completions_and_the_cli(tmp_path: Path) -> None:
    with running_engine(tmp_path / "engine.log", *ENGINE_FLAGS) as base_url:
        config = BenchConfig(
            Target(base_url, "any", api="completions"),
            (Level(rate=8.0, max_concurrency=2),),
            requests=3,
            warmup=0,
            lengths=LengthSpec.fixed(16, 8),
        )
        run = asyncio.run(run_benchmark(config))
        level = run.levels[0]
        assert (level.completed, level.output_tokens) == (3, 24)
        assert run.flags.ignore_eos == "unchecked"

        out = tmp_path / "out"
        result = run_cli(
            "bench", "run", "--url", f"{base_url}/v1", "--concurrency", "1,2", "--requests", "2", "--warmup", "1",
            "--input", "24", "--output", "8", "--slo-ttft-ms", "5000", "--json", str(out.with_suffix(".json")),
            "--csv", str(out.with_suffix(".csv")), "--data-dir", str(tmp_path / "data"), "--label", "cli-test",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "c=1" in result.stdout and "c=2" in result.stdout and "ignore_eos: honoured" in result.stdout
    data = json.loads(out.with_suffix(".json").read_text())
    assert [lv["output_tokens"] for lv in data["levels"]] == [16, 16]
    assert all(lv["good_requests"] == 2 for lv in data["levels"])
    assert out.with_suffix(".csv").read_text().count("\n") == 3  # header + one row per level
    listed = run_cli("bench", "list", "--data-dir", str(tmp_path / "data"))
    assert listed.returncode == 0 and data["id"] in listed.stdout and "cli-test" in listed.stdout
    shown = run_cli("bench", "show", data["id"], "--json", "--data-dir", str(tmp_path / "data"))
    assert json.loads(shown.stdout)["levels"] == data["levels"]


def test_through_llmhost_with_the_vllm_tokenizer(server: LlmhostServer) -> None:
    config = BenchConfig(
        Target(f"{server.base_url}/v1", DEFAULT_MODEL), (Level(concurrency=2),), requests=2, warmup=1,
        lengths=LengthSpec.fixed(40, 8),
    )  # fmt: skip
    run = asyncio.run(run_benchmark(config))
    level = run.levels[0]
    assert run.flags.tokenizer == "vllm" and run.flags.ignore_eos == "honoured"
    assert (level.completed, level.input_tokens, level.output_tokens) == (2, 80, 16)
