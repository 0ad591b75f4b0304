"""The benchmark database: versioned migrations per component, runs and levels stored and read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from llmhost.bench.client import Target
from llmhost.bench.db import Database
from llmhost.bench.metrics import Slo, compute_level
from llmhost.bench.records import RequestRecord
from llmhost.bench.report import csv_rows, flags_caption, summary_table, write_csv, write_json
from llmhost.bench.runner import BenchConfig, BenchRun, RunFlags
from llmhost.bench.store import MIGRATIONS, BenchStore
from llmhost.bench.workload import LengthSpec, Level


def make_run(run_id: str, created: float, model: str = "m", throughput_scale: float = 1.0) -> BenchRun:
    levels = (Level(concurrency=1), Level(concurrency=2))
    config = BenchConfig(Target("http://x:1/v1", model), levels, requests=2, lengths=LengthSpec.fixed(8, 4))
    run = BenchRun(run_id, created, config, flags=RunFlags("tokenize", "honoured", False, "llama.cpp"))
    for level in levels:
        record = RequestRecord(0, 8, 4, 0.0, end=1.0 / throughput_scale, chunk_times=[0.1, 0.2, 0.3, 0.4])
        record.first, record.last, record.completion_tokens, record.prompt_tokens = 0.1, 0.4, 4, 8
        bad = RequestRecord(1, 8, 4, 0.0).fail("http_500", "x", 0.5)
        run.levels.append(compute_level(level, [record, bad], Slo(ttft_ms=200)))
    run.finished_at = created + 5
    return run


def test_store_round_trip_and_listing(tmp_path: Path) -> None:
    store = BenchStore(tmp_path / "bench.db")
    store.save(make_run("a", 100.0, "m1"))
    store.save(make_run("b", 200.0, "m2", throughput_scale=2.0))
    again = store.get_run("a")
    assert again is not None and again.to_dict() == make_run("a", 100.0, "m1").to_dict()
    listed = store.list_runs()
    assert [run.id for run in listed] == ["b", "a"]  # newest first
    assert listed[0].levels == 2 and listed[0].peak_output_throughput == 8.0
    assert [run.id for run in store.list_runs(model="m1")] == ["a"]
    assert store.list_runs(source="tuner") == []
    assert store.get_run("missing") is None
    store.save(make_run("a", 100.0, "m1"))  # saving again replaces
    assert len(store.list_runs()) == 2
    assert store.delete_run("a") and not store.delete_run("a")
    assert store.db.query("SELECT COUNT(*) FROM bench_levels WHERE run_id = 'a'")[0][0] == 0
    store.close()


def test_migrations_are_versioned_per_component(tmp_path: Path) -> None:
    path = tmp_path / "bench.db"
    BenchStore(path).close()
    db = Database(path)
    assert db.schema_version("bench") == len(MIGRATIONS)
    assert db.migrate("other", [("CREATE TABLE other_a (x)",), ("CREATE TABLE other_b (y)",)]) == 2
    assert db.migrate("other", [("CREATE TABLE other_a (x)",), ("CREATE TABLE other_b (y)",)]) == 2  # no re-run
    assert db.schema_version("bench") == len(MIGRATIONS)
    db.close()
    BenchStore(path).close()  # opening again does not re-create the tables


def test_json_csv_and_table(tmp_path: Path) -> None:
    run = make_run("r", 1.0)
    write_json(run, tmp_path / "run.json")
    assert BenchRun.from_dict(json.loads((tmp_path / "run.json").read_text())).to_dict() == run.to_dict()
    write_csv(run, tmp_path / "run.csv")
    with (tmp_path / "run.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["value"] for row in rows] == ["1.0", "2.0"]
    assert rows[0]["errors"] == "http_500=1" and rows[0]["completed"] == "1"
    assert float(rows[0]["ttft_p50_ms"]) == 100.0 and rows[0]["goodput_rps"] == "1.0"
    assert set(csv_rows(run)[0]) >= {"tpot_p99_ms", "itl_p95_ms", "e2e_mean_ms", "output_throughput"}
    assert len(summary_table(run).rows) == 2
    caption = flags_caption(run)
    assert "input lengths: tokenize" in caption and "http_500 x2" in caption
