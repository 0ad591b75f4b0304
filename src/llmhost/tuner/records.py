"""What the tuner stores: jobs (their configuration and strategy state) and trials (parameters and results)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from llmhost.bench.metrics import LevelMetrics

JobStatus = Literal["pending", "running", "interrupted", "stopped", "completed", "failed"]
TrialStatus = Literal["running", "complete", "failed"]
TrialKind = Literal["baseline", "search"]
FINISHED_JOB: tuple[JobStatus, ...] = ("stopped", "completed", "failed")  # "interrupted" is resumed at start


@dataclass(slots=True)
class TrialRecord:
    job_id: str
    number: int  # 0 is the baseline
    kind: TrialKind
    params: dict[str, Any]  # the searched parameters (the baseline's: its profile's values for them)
    status: TrialStatus = "running"
    value: float | None = None
    constraints: dict[str, float] = field(default_factory=dict)
    reason: str | None = None  # why it failed or is infeasible
    metrics: LevelMetrics | None = None
    bench_run_id: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)  # what the executor launched
    started_at: float = 0.0
    finished_at: float | None = None

    @property
    def feasible(self) -> bool:
        return self.status == "complete" and self.value is not None and all(v <= 0 for v in self.constraints.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "number": self.number,
            "kind": self.kind,
            "params": self.params,
            "status": self.status,
            "value": self.value,
            "feasible": self.feasible,
            "constraints": self.constraints,
            "reason": self.reason,
            "metrics": self.metrics.to_dict() if self.metrics else None,
            "bench_run_id": self.bench_run_id,
            "engine": self.engine,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass(slots=True)
class JobRecord:
    id: str
    model: str
    status: JobStatus
    config: dict[str, Any]  # TuneConfig.to_dict()
    strategy_state: dict[str, Any] | None
    created_at: float
    updated_at: float
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_JOB

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "config": self.config,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "error": self.error,
        }
