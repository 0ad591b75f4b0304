"""Benchmark runs in SQLite, for the CLI, the tuner and the dashboard's charts.

A run row keeps its configuration and flags as JSON; one row per level keeps the level's metrics as JSON plus
the headline numbers as columns (for listing and charting without parsing JSON).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmhost.bench.db import Database
from llmhost.bench.metrics import LevelMetrics
from llmhost.bench.runner import BenchRun

COMPONENT = "bench"
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE bench_runs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            finished_at REAL,
            source TEXT NOT NULL,
            label TEXT NOT NULL,
            base_url TEXT NOT NULL,
            model TEXT NOT NULL,
            api TEXT NOT NULL,
            lengths TEXT NOT NULL,
            config TEXT NOT NULL,
            flags TEXT NOT NULL
        )""",
        "CREATE INDEX bench_runs_by_time ON bench_runs (created_at)",
        """CREATE TABLE bench_levels (
            run_id TEXT NOT NULL REFERENCES bench_runs (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL,
            value REAL NOT NULL,
            completed INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            request_throughput REAL NOT NULL,
            output_throughput REAL NOT NULL,
            goodput_rps REAL NOT NULL,
            metrics TEXT NOT NULL,
            PRIMARY KEY (run_id, position)
        )""",
    ),
]


@dataclass(frozen=True, slots=True)
class RunSummary:
    id: str
    created_at: float
    finished_at: float | None
    source: str
    label: str
    base_url: str
    model: str
    api: str
    lengths: str
    levels: int
    peak_output_throughput: float | None  # the best level's output tok/s (a maximum, not an average)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BenchStore:
    def __init__(self, db: Database | Path) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        self.db.migrate(COMPONENT, MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    def save(self, run: BenchRun) -> None:
        """Insert or replace the run and its levels."""
        config = run.config
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM bench_runs WHERE id = ?", (run.id,))
            conn.execute(
                "INSERT INTO bench_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.created_at,
                    run.finished_at,
                    run.source,
                    run.label,
                    config.target.base_url,
                    config.target.model,
                    config.target.api,
                    str(config.lengths),
                    json.dumps(config.to_dict()),
                    json.dumps(run.to_dict()["flags"]),
                ),
            )
            conn.executemany(
                "INSERT INTO bench_levels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_level_row(run.id, position, level) for position, level in enumerate(run.levels)],
            )

    def list_runs(self, *, limit: int = 50, model: str | None = None, source: str | None = None) -> list[RunSummary]:
        """Newest first."""
        clauses, params = [], []
        for column, value in (("model", model), ("source", source)):
            if value is not None:
                clauses.append(f"r.{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.query(
            "SELECT r.*, COUNT(l.position) AS level_count, MAX(l.output_throughput) AS peak"
            f" FROM bench_runs r LEFT JOIN bench_levels l ON l.run_id = r.id {where}"
            " GROUP BY r.id ORDER BY r.created_at DESC LIMIT ?",
            [*params, limit],
        )
        return [_summary(row) for row in rows]

    def get_run(self, run_id: str) -> BenchRun | None:
        rows = self.db.query("SELECT * FROM bench_runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        row = rows[0]
        levels = self.db.query("SELECT metrics FROM bench_levels WHERE run_id = ? ORDER BY position", (run_id,))
        return BenchRun.from_dict(
            {
                "id": row["id"],
                "created_at": row["created_at"],
                "finished_at": row["finished_at"],
                "label": row["label"],
                "source": row["source"],
                "config": json.loads(row["config"]),
                "flags": json.loads(row["flags"]),
                "levels": [json.loads(level["metrics"]) for level in levels],
            }
        )

    def delete_run(self, run_id: str) -> bool:
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM bench_runs WHERE id = ?", (run_id,)).rowcount > 0


def _level_row(run_id: str, position: int, level: LevelMetrics) -> tuple[Any, ...]:
    return (
        run_id,
        position,
        level.level.kind,
        level.level.value,
        level.completed,
        level.failed,
        level.request_throughput,
        level.output_throughput,
        level.goodput_rps,
        json.dumps(level.to_dict()),
    )


def _summary(row: Any) -> RunSummary:
    return RunSummary(
        id=row["id"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        source=row["source"],
        label=row["label"],
        base_url=row["base_url"],
        model=row["model"],
        api=row["api"],
        lengths=row["lengths"],
        levels=row["level_count"],
        peak_output_throughput=row["peak"],
    )
