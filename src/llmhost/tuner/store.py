"""Tuning jobs and their trials in SQLite (the benchmark's ``bench.db``), so a job resumes after a restart.

A trial row is written when the trial starts (status ``running``) in the same transaction as the strategy
state that suggested it, and rewritten when it ends; a ``running`` row found at resume is an interrupted trial
and runs again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from llmhost.bench.db import Database
from llmhost.bench.metrics import LevelMetrics
from llmhost.tuner.records import JobRecord, JobStatus, TrialRecord

COMPONENT = "tuner"
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE tune_jobs (
            id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            config TEXT NOT NULL,
            strategy_state TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            error TEXT
        )""",
        """CREATE TABLE tune_trials (
            job_id TEXT NOT NULL REFERENCES tune_jobs (id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            kind TEXT NOT NULL,
            params TEXT NOT NULL,
            status TEXT NOT NULL,
            value REAL,
            constraints TEXT NOT NULL,
            reason TEXT,
            metrics TEXT,
            bench_run_id TEXT,
            engine TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            PRIMARY KEY (job_id, number)
        )""",
    ),
]


class TunerStore:
    def __init__(self, db: Database | Path) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        self.db.migrate(COMPONENT, MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    # jobs --------------------------------------------------------------------------------------------------

    def create_job(self, job: JobRecord) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO tune_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.model,
                    job.status,
                    json.dumps(job.config),
                    _json_or_none(job.strategy_state),
                    job.created_at,
                    job.updated_at,
                    job.error,
                ),
            )

    def get_job(self, job_id: str) -> JobRecord | None:
        rows = self.db.query("SELECT * FROM tune_jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list_jobs(self, *, limit: int = 50, model: str | None = None) -> list[JobRecord]:
        """Newest first."""
        where, params = ("WHERE model = ?", [model]) if model else ("", [])
        rows = self.db.query(f"SELECT * FROM tune_jobs {where} ORDER BY created_at DESC LIMIT ?", [*params, limit])
        return [_job(row) for row in rows]

    def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs to resume after a restart (running ones were interrupted by it)."""
        rows = self.db.query("SELECT * FROM tune_jobs WHERE status IN ('pending', 'running', 'interrupted')")
        return [_job(row) for row in rows]

    def set_status(self, job_id: str, status: JobStatus, error: str | None = None) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE tune_jobs SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                (status, error, time.time(), job_id),
            )

    def save_state(self, job_id: str, state: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            _update_state(conn, job_id, state)

    def delete_job(self, job_id: str) -> bool:
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM tune_jobs WHERE id = ?", (job_id,)).rowcount > 0

    # trials ------------------------------------------------------------------------------------------------

    def save_trial(self, trial: TrialRecord, state: dict[str, Any] | None = None) -> None:
        """Insert or replace the trial, with the strategy state that goes with it."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO tune_trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(trial)
            )
            if state is not None:
                _update_state(conn, trial.job_id, state)

    def trials(self, job_id: str) -> list[TrialRecord]:
        rows = self.db.query("SELECT * FROM tune_trials WHERE job_id = ? ORDER BY number", (job_id,))
        return [_trial(row) for row in rows]


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _update_state(conn: Any, job_id: str, state: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE tune_jobs SET strategy_state = ?, updated_at = ? WHERE id = ?", (json.dumps(state), time.time(), job_id)
    )


def _row(trial: TrialRecord) -> tuple[Any, ...]:
    return (
        trial.job_id,
        trial.number,
        trial.kind,
        json.dumps(trial.params),
        trial.status,
        trial.value,
        json.dumps(trial.constraints),
        trial.reason,
        _json_or_none(trial.metrics.to_dict() if trial.metrics else None),
        trial.bench_run_id,
        json.dumps(trial.engine),
        trial.started_at,
        trial.finished_at,
    )


def _job(row: Any) -> JobRecord:
    return JobRecord(
        id=row["id"],
        model=row["model"],
        status=row["status"],
        config=json.loads(row["config"]),
        strategy_state=json.loads(row["strategy_state"]) if row["strategy_state"] else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        error=row["error"],
    )


def _trial(row: Any) -> TrialRecord:
    return TrialRecord(
        job_id=row["job_id"],
        number=row["number"],
        kind=row["kind"],
        params=json.loads(row["params"]),
        status=row["status"],
        value=row["value"],
        constraints=json.loads(row["constraints"]),
        reason=row["reason"],
        metrics=LevelMetrics.from_dict(json.loads(row["metrics"])) if row["metrics"] else None,
        bench_run_id=row["bench_run_id"],
        engine=json.loads(row["engine"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
