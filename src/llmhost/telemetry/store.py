"""Telemetry history in SQLite (WAL): finished requests and metric samples, downsampled as they age.

Samples are written raw (1 s) and ``compact`` folds them into 10 s and then 1 min buckets (mean, min, max, count
of the raw values), keeping raw for an hour, 10 s buckets for a day and 1 min buckets for 30 days. A query picks
the finest resolution that still covers its window.

Threads: one connection shared by every thread, serialised by a lock. Writes are a few rows per second, so one
connection costs nothing and keeps transactions simple; WAL lets other processes (the CLI) read meanwhile. Every
method blocks, so call it from a thread (``asyncio.to_thread`` or a one-thread executor), not the event loop.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from llmhost.database import Database
from llmhost.telemetry.requests import RequestState, RequestSummary
from llmhost.telemetry.series import Point

RESOLUTIONS = (1, 10, 60)  # seconds per sample: raw, then each coarser one folds the previous
RETENTION = {1: 3600.0, 10: 86400.0, 60: 30 * 86400.0}  # seconds each resolution is kept
REQUEST_RETENTION = 30 * 86400.0
SETTLE_SECONDS = 5.0  # a sample may be written this long after its timestamp; newer buckets wait a compaction

MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            started_at REAL NOT NULL,
            dialect TEXT NOT NULL,
            model TEXT NOT NULL,
            target TEXT,
            state TEXT NOT NULL,
            status INTEGER,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            ttft_ms REAL,
            tokens_per_second REAL,
            duration_ms REAL,
            error TEXT
        )""",
        "CREATE INDEX requests_by_time ON requests (started_at)",
        """CREATE TABLE samples (
            resolution INTEGER NOT NULL,
            ts REAL NOT NULL,
            series TEXT NOT NULL,
            labels TEXT NOT NULL,
            value REAL NOT NULL,
            minimum REAL NOT NULL,
            maximum REAL NOT NULL,
            count INTEGER NOT NULL
        )""",
        "CREATE INDEX samples_by_series ON samples (series, resolution, ts)",
        "CREATE INDEX samples_by_age ON samples (resolution, ts)",
        "CREATE TABLE compaction (resolution INTEGER PRIMARY KEY, done_until REAL NOT NULL)",
    ),
]

REQUEST_COLUMNS = tuple(field.name for field in fields(RequestSummary))
T = TypeVar("T")

DOWNSAMPLE = """
    INSERT INTO samples (resolution, ts, series, labels, value, minimum, maximum, count)
    SELECT :target, CAST(ts / :target AS INTEGER) * :target AS bucket, series, labels,
           SUM(value * count) / SUM(count), MIN(minimum), MAX(maximum), SUM(count)
    FROM samples
    WHERE resolution = :source AND ts >= :start AND ts < :end
    GROUP BY bucket, series, labels
"""


class StoreError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    ts: float  # the sample's time, or its bucket's start
    value: float  # the mean over the bucket
    minimum: float
    maximum: float
    count: int  # raw samples behind this point


@dataclass(frozen=True, slots=True)
class SeriesLine:
    labels: dict[str, str]
    points: list[SeriesPoint]


@dataclass(frozen=True, slots=True)
class SeriesHistory:
    series: str
    resolution: int  # seconds per point
    lines: list[SeriesLine]  # one per label set


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float
    p90: float
    p99: float
    count: int


@dataclass(frozen=True, slots=True)
class RequestAggregate:
    key: str  # the model or the dialect
    requests: int
    by_state: dict[str, int]
    by_status: dict[int, int]  # requests without a status code are left out
    prompt_tokens: int | None  # sum of the known counts; None when no request reported one
    completion_tokens: int | None
    ttft_ms: Percentiles | None
    duration_ms: Percentiles | None
    tokens_per_second: Percentiles | None


class TelemetryStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = Database(path)
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    @property
    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    def close(self) -> None:
        self._db.close()

    # writing ---------------------------------------------------------------------------------------------

    def add_request(self, request: RequestSummary) -> None:
        """Record a finished request (again: the same id replaces the earlier row)."""
        self.add_requests([request])

    def add_requests(self, requests: Sequence[RequestSummary]) -> None:
        """Record finished requests in one transaction (one commit for a whole batch)."""
        placeholders = ", ".join("?" * len(REQUEST_COLUMNS))
        rows = [tuple(str(v) if isinstance(v, RequestState) else v for v in astuple(r)) for r in requests]
        with self._transaction() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO requests ({', '.join(REQUEST_COLUMNS)}) VALUES ({placeholders})", rows
            )

    def add_points(self, ts: float, points: Iterable[Point]) -> None:
        """Raw samples taken at ``ts`` (wall-clock seconds)."""
        rows = [(ts, point.series, point.key, point.value, point.value, point.value) for point in points]
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO samples (resolution, ts, series, labels, value, minimum, maximum, count)"
                " VALUES (1, ?, ?, ?, ?, ?, ?, 1)",
                rows,
            )

    def compact(self, now: float | None = None) -> None:
        """Fold complete buckets into the coarser resolutions, then drop what is past its retention.

        Run it every minute or so; each bucket is folded once (the progress is kept in the database).
        """
        now = time.time() if now is None else now
        with self._transaction() as conn:
            for source, target in itertools.pairwise(RESOLUTIONS):
                downsample(conn, source, target, now)
            for resolution, keep in RETENTION.items():
                conn.execute("DELETE FROM samples WHERE resolution = ? AND ts < ?", (resolution, now - keep))
            conn.execute("DELETE FROM requests WHERE started_at < ?", (now - REQUEST_RETENTION,))

    # reading ---------------------------------------------------------------------------------------------

    def recent_requests(
        self,
        *,
        limit: int = 100,
        model: str | None = None,
        dialect: str | None = None,
        state: RequestState | None = None,
        status: int | None = None,
        since: float | None = None,
    ) -> list[RequestSummary]:
        """Newest first, filtered by every argument given."""
        equal = {"model": model, "dialect": dialect, "state": str(state) if state else None, "status": status}
        clauses = [f"{column} = ?" for column, value in equal.items() if value is not None]
        params: list[Any] = [value for value in equal.values() if value is not None]
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(
            f"SELECT {', '.join(REQUEST_COLUMNS)} FROM requests {where} ORDER BY started_at DESC LIMIT ?",
            (*params, limit),
        )
        return [request_from_row(row) for row in rows]

    def request_aggregates(
        self, by: Literal["model", "dialect"], *, since: float | None = None
    ) -> list[RequestAggregate]:
        """Per model or per dialect: counts by state and status, token sums, TTFT/duration/speed percentiles."""
        if by not in ("model", "dialect"):
            raise ValueError(f"cannot aggregate by {by!r}")
        rows = self._read(
            f"SELECT {', '.join(REQUEST_COLUMNS)} FROM requests WHERE started_at >= ?",
            (since if since is not None else -math.inf,),
        )
        groups: dict[str, list[RequestSummary]] = {}
        for request in map(request_from_row, rows):
            groups.setdefault(getattr(request, by), []).append(request)
        return [aggregate(key, requests) for key, requests in sorted(groups.items())]

    def series(
        self,
        name: str,
        *,
        since: float,
        until: float | None = None,
        labels: Mapping[str, str] | None = None,
        resolution: int | None = None,
        now: float | None = None,
    ) -> SeriesHistory:
        """A series over [since, until], at the finest resolution kept that long (unless ``resolution`` is given).

        ``labels`` keeps only the label sets that contain all of them.
        """
        now = time.time() if now is None else now
        resolution = resolution or resolution_for(now - since)
        start = since if resolution == RESOLUTIONS[0] else math.floor(since / resolution) * resolution
        rows = self._read(
            "SELECT labels, ts, value, minimum, maximum, count FROM samples"
            " WHERE series = ? AND resolution = ? AND ts >= ? AND ts <= ? ORDER BY labels, ts",
            (name, resolution, start, now if until is None else until),
        )
        lines: dict[str, list[SeriesPoint]] = {}
        for key, *values in rows:
            lines.setdefault(key, []).append(SeriesPoint(*values))
        wanted = dict(labels or {})
        selected = [SeriesLine(json.loads(key), points) for key, points in lines.items()]
        return SeriesHistory(name, resolution, [line for line in selected if wanted.items() <= line.labels.items()])

    # plumbing --------------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.path} has schema version {version}, newer than this llmhost knows")
            for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._db.query(sql, params)


def downsample(conn: sqlite3.Connection, source: int, target: int, now: float) -> None:
    """Fold the ``source`` rows of every complete, settled ``target`` bucket not folded yet."""
    row = conn.execute("SELECT done_until FROM compaction WHERE resolution = ?", (target,)).fetchone()
    start = row[0] if row else -math.inf
    end = math.floor((now - SETTLE_SECONDS) / target) * target
    if end <= start:
        return
    conn.execute(DOWNSAMPLE, {"source": source, "target": target, "start": start, "end": end})
    conn.execute(
        "INSERT INTO compaction (resolution, done_until) VALUES (?, ?)"
        " ON CONFLICT (resolution) DO UPDATE SET done_until = excluded.done_until",
        (target, end),
    )


def resolution_for(age: float) -> int:
    """The finest resolution still kept ``age`` seconds back."""
    return next((resolution for resolution in RESOLUTIONS if age <= RETENTION[resolution]), RESOLUTIONS[-1])


def request_from_row(row: tuple[Any, ...]) -> RequestSummary:
    values = dict(zip(REQUEST_COLUMNS, row, strict=True))
    values["state"] = RequestState(values["state"])
    return RequestSummary(**values)


def aggregate(key: str, requests: list[RequestSummary]) -> RequestAggregate:
    prompt = known(request.prompt_tokens for request in requests)
    completion = known(request.completion_tokens for request in requests)
    return RequestAggregate(
        key=key,
        requests=len(requests),
        by_state=dict(Counter(str(request.state) for request in requests)),
        by_status=dict(Counter(request.status for request in requests if request.status is not None)),
        prompt_tokens=sum(prompt) if prompt else None,
        completion_tokens=sum(completion) if completion else None,
        ttft_ms=percentiles(known(request.ttft_ms for request in requests)),
        duration_ms=percentiles(known(request.duration_ms for request in requests)),
        tokens_per_second=percentiles(known(request.tokens_per_second for request in requests)),
    )


def known(values: Iterable[T | None]) -> list[T]:
    return [value for value in values if value is not None]


def percentiles(values: list[float]) -> Percentiles | None:
    """p50/p90/p99 by linear interpolation between the closest ranks."""
    if not values:
        return None
    if len(values) == 1:
        return Percentiles(values[0], values[0], values[0], 1)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return Percentiles(p50=cuts[49], p90=cuts[89], p99=cuts[98], count=len(values))
