"""TelemetryStore on real SQLite files: migrations, request history, downsampling math, retention, threads."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from llmhost.telemetry import store as store_module
from llmhost.telemetry.requests import RequestState, RequestSummary
from llmhost.telemetry.series import Point
from llmhost.telemetry.store import (
    MIGRATIONS,
    Percentiles,
    SeriesPoint,
    StoreError,
    TelemetryStore,
)

BASE = 1_699_999_980.0  # a whole minute
HOUR, DAY = 3600.0, 86400.0
SETTLE = store_module.SETTLE_SECONDS

S = RequestState


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[[], TelemetryStore]]:
    opened: list[TelemetryStore] = []

    def open_() -> TelemetryStore:
        opened.append(TelemetryStore(tmp_path / "data" / "telemetry.db"))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], TelemetryStore]) -> TelemetryStore:
    return open_store()


def power(value: float, gpu: str = "0") -> Point:
    return Point("gpu_power_watts", (("gpu", gpu),), value)


def request(request_id: str, **changes: object) -> RequestSummary:
    base = RequestSummary(
        id=request_id,
        started_at=BASE,
        dialect="openai",
        model="smol",
        target="local",
        state=S.DONE,
        status=200,
        prompt_tokens=10,
        completion_tokens=5,
        ttft_ms=100.0,
        tokens_per_second=50.0,
        duration_ms=300.0,
        error=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def points(history: store_module.SeriesHistory) -> list[SeriesPoint]:
    (line,) = history.lines
    return line.points


# migrations -------------------------------------------------------------------------------------------


def test_a_new_store_is_migrated_and_in_wal_mode(store: TelemetryStore) -> None:
    assert store.schema_version == len(MIGRATIONS)
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"requests", "samples", "compaction"} <= tables


def test_reopening_keeps_history_and_runs_no_migration_twice(open_store: Callable[[], TelemetryStore]) -> None:
    first = open_store()
    first.add_request(request("r1"))
    first.add_points(BASE, [power(100.0)])
    first.close()

    again = open_store()

    assert again.schema_version == len(MIGRATIONS)
    assert [row.id for row in again.recent_requests()] == ["r1"]
    assert points(again.series("gpu_power_watts", since=BASE, now=BASE + 1)) == [SeriesPoint(BASE, 100, 100, 100, 1)]


def test_a_later_migration_upgrades_an_existing_store(
    open_store: Callable[[], TelemetryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store().add_request(request("r1"))
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, ("ALTER TABLE requests ADD COLUMN note TEXT",)])

    upgraded = open_store()

    assert upgraded.schema_version == len(MIGRATIONS) + 1
    assert [row.id for row in upgraded.recent_requests()] == ["r1"]


def test_a_failing_migration_changes_nothing(
    open_store: Callable[[], TelemetryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store().close()
    broken = [*MIGRATIONS, ("CREATE TABLE extra (x)", "NOT SQL AT ALL")]
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)

    with pytest.raises(sqlite3.OperationalError):
        open_store()

    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    store = open_store()
    assert store.schema_version == len(MIGRATIONS)
    with sqlite3.connect(store.path) as other:
        assert other.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchall() == []


def test_a_store_from_a_newer_llmhost_is_refused(open_store: Callable[[], TelemetryStore]) -> None:
    store = open_store()
    with sqlite3.connect(store.path) as other:
        other.execute("PRAGMA user_version = 99")

    with pytest.raises(StoreError, match="schema version 99"):
        open_store()


# requests ---------------------------------------------------------------------------------------------


def test_recent_requests_newest_first_with_filters(store: TelemetryStore) -> None:
    store.add_request(request("old", started_at=BASE - 60))
    store.add_request(request("err", started_at=BASE, state=S.ERROR, status=503, error="engine crashed"))
    store.add_request(request("new", started_at=BASE + 60, dialect="ollama", model="gemma"))

    assert [row.id for row in store.recent_requests()] == ["new", "err", "old"]
    assert [row.id for row in store.recent_requests(limit=1)] == ["new"]
    assert [row.id for row in store.recent_requests(model="smol")] == ["err", "old"]
    assert [row.id for row in store.recent_requests(dialect="ollama")] == ["new"]
    assert [row.id for row in store.recent_requests(state=S.ERROR)] == ["err"]
    assert [row.id for row in store.recent_requests(status=200, since=BASE)] == ["new"]
    assert store.recent_requests(state=S.ERROR)[0] == request(
        "err", started_at=BASE, state=S.ERROR, status=503, error="engine crashed"
    )


def test_unknown_figures_stay_unknown(store: TelemetryStore) -> None:
    nothing_known = request(
        "x",
        state=S.CANCELLED,
        status=None,
        prompt_tokens=None,
        completion_tokens=None,
        ttft_ms=None,
        tokens_per_second=None,
        duration_ms=None,
        target=None,
    )

    store.add_request(nothing_known)

    assert store.recent_requests() == [nothing_known]


def test_the_same_id_replaces_its_row(store: TelemetryStore) -> None:
    store.add_request(request("r1", status=None))
    store.add_request(request("r1", status=200))

    assert [(row.id, row.status) for row in store.recent_requests()] == [("r1", 200)]


def test_aggregates_per_model_and_per_dialect(store: TelemetryStore) -> None:
    for number, ttft in enumerate([100.0, 200.0, 300.0, 400.0]):
        store.add_request(request(f"a{number}", ttft_ms=ttft, duration_ms=ttft * 2, prompt_tokens=10 + number))
    store.add_request(
        request("a-err", state=S.ERROR, status=500, prompt_tokens=None, completion_tokens=None, ttft_ms=None)
    )
    unknown = {"prompt_tokens": None, "completion_tokens": None, "ttft_ms": None, "duration_ms": None}
    store.add_request(request("b", model="gemma", dialect="tgi", state=S.CANCELLED, status=None, **unknown))

    gemma, smol = store.request_aggregates("model")  # sorted by key

    assert smol.key == "smol" and smol.requests == 5
    assert smol.by_state == {"done": 4, "error": 1}
    assert smol.by_status == {200: 4, 500: 1}
    assert smol.prompt_tokens == 10 + 11 + 12 + 13
    assert smol.completion_tokens == 20
    assert smol.ttft_ms == Percentiles(p50=250.0, p90=370.0, p99=397.0, count=4)  # linear interpolation
    assert smol.duration_ms == Percentiles(p50=400.0, p90=720.0, p99=792.0, count=5)
    assert gemma.key == "gemma" and gemma.by_status == {}
    assert gemma.prompt_tokens is None and gemma.ttft_ms is None  # nothing measured is not 0
    assert [(row.key, row.requests) for row in store.request_aggregates("dialect")] == [("openai", 5), ("tgi", 1)]
    assert store.request_aggregates("model", since=BASE + 1) == []


def test_a_single_value_is_every_percentile(store: TelemetryStore) -> None:
    store.add_request(request("only", ttft_ms=42.0))

    (row,) = store.request_aggregates("model")

    assert row.ttft_ms == Percentiles(42.0, 42.0, 42.0, 1)


# samples and compaction -------------------------------------------------------------------------------


def test_compaction_folds_raw_into_10s_then_1min_buckets_exactly(store: TelemetryStore) -> None:
    for second in range(20):
        store.add_points(BASE + second, [power(float(second)), power(1000.0, gpu="1")])
    store.add_points(BASE + 20, [power(10.0)])
    store.add_points(BASE + 21, [power(20.0)])

    store.compact(now=BASE + 20 + SETTLE)  # the bucket at +20 is still open

    ten = store.series("gpu_power_watts", labels={"gpu": "0"}, since=BASE, resolution=10, now=BASE + 30)
    assert points(ten) == [SeriesPoint(BASE, 4.5, 0, 9, 10), SeriesPoint(BASE + 10, 14.5, 10, 19, 10)]

    store.compact(now=BASE + 60 + SETTLE)

    ten = store.series("gpu_power_watts", labels={"gpu": "0"}, since=BASE, resolution=10, now=BASE + 70)
    assert points(ten)[-1] == SeriesPoint(BASE + 20, 15.0, 10, 20, 2)
    minute = store.series("gpu_power_watts", since=BASE, resolution=60, now=BASE + 70)
    by_gpu = {line.labels["gpu"]: line.points for line in minute.lines}
    assert by_gpu == {"0": [SeriesPoint(BASE, 10.0, 0, 20, 22)], "1": [SeriesPoint(BASE, 1000.0, 1000, 1000, 20)]}


def test_each_bucket_is_folded_once(store: TelemetryStore) -> None:
    for second in range(10):
        store.add_points(BASE + second, [power(2.0)])

    for _ in range(3):
        store.compact(now=BASE + 60 + SETTLE)

    assert points(store.series("gpu_power_watts", since=BASE, resolution=10, now=BASE + 70)) == [
        SeriesPoint(BASE, 2.0, 2.0, 2.0, 10)
    ]
    assert points(store.series("gpu_power_watts", since=BASE, resolution=60, now=BASE + 70)) == [
        SeriesPoint(BASE, 2.0, 2.0, 2.0, 10)
    ]


def test_a_bucket_waits_until_late_samples_have_settled(store: TelemetryStore) -> None:
    store.add_points(BASE + 9, [power(1.0)])

    store.compact(now=BASE + 10 + SETTLE - 1)
    assert store.series("gpu_power_watts", since=BASE, resolution=10, now=BASE + 20).lines == []

    store.add_points(BASE + 9.5, [power(3.0)])  # written late, still in time
    store.compact(now=BASE + 10 + SETTLE)
    assert points(store.series("gpu_power_watts", since=BASE, resolution=10, now=BASE + 20)) == [
        SeriesPoint(BASE, 2.0, 1.0, 3.0, 2)
    ]


def test_retention_per_resolution(store: TelemetryStore) -> None:
    store.add_points(BASE, [power(7.0)])
    store.add_request(request("r1", started_at=BASE))

    def count(resolution: int, now: float) -> int:
        return len(store.series("gpu_power_watts", since=BASE - 60, resolution=resolution, now=now).lines)

    store.compact(now=BASE + HOUR + 60)
    assert (count(1, BASE + HOUR), count(10, BASE + HOUR), count(60, BASE + HOUR)) == (0, 1, 1)
    store.compact(now=BASE + DAY + 60)
    assert (count(10, BASE + DAY), count(60, BASE + DAY)) == (0, 1)
    assert store.recent_requests() != []
    store.compact(now=BASE + 30 * DAY + 60)
    assert count(60, BASE + 30 * DAY) == 0
    assert store.recent_requests() == []


def test_a_window_is_read_at_the_finest_resolution_still_kept(store: TelemetryStore) -> None:
    now = BASE + 2 * DAY

    assert store.series("x", since=now - 10 * 60, now=now).resolution == 1
    assert store.series("x", since=now - HOUR, now=now).resolution == 1
    assert store.series("x", since=now - 6 * HOUR, now=now).resolution == 10
    assert store.series("x", since=now - 2 * DAY, now=now).resolution == 60
    assert store.series("x", since=now - 90 * DAY, now=now).resolution == 60


def test_series_window_and_label_filter(store: TelemetryStore) -> None:
    for second in range(5):
        store.add_points(BASE + second, [power(second), power(second * 10, gpu="1")])

    history = store.series("gpu_power_watts", since=BASE + 1, until=BASE + 3, labels={"gpu": "1"}, now=BASE + 5)

    assert history.series == "gpu_power_watts" and history.resolution == 1
    (line,) = history.lines
    assert line.labels == {"gpu": "1"}
    assert [(point.ts, point.value) for point in line.points] == [(BASE + 1, 10), (BASE + 2, 20), (BASE + 3, 30)]
    assert store.series("gpu_power_watts", since=BASE, labels={"gpu": "9"}, now=BASE + 5).lines == []


def test_writes_from_many_threads(store: TelemetryStore) -> None:
    def write(worker: int) -> None:
        for number in range(25):
            store.add_points(BASE + number, [power(float(worker), gpu=str(worker))])
            store.add_request(request(f"w{worker}-{number}"))
            store.recent_requests(limit=5)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))

    assert len(store.recent_requests(limit=1000)) == 200
    lines = store.series("gpu_power_watts", since=BASE, now=BASE + 30).lines
    assert sorted(len(line.points) for line in lines) == [25] * 8
