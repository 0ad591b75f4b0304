"""A run as a rich table, a JSON document and a CSV file (one row per level, distributions flattened)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from llmhost.bench.metrics import Distribution, LevelMetrics
from llmhost.bench.runner import BenchRun

DISTRIBUTIONS = ("ttft", "tpot", "itl", "e2e")
STATISTICS = ("mean", "std", "min", "max", "p50", "p90", "p95", "p99")
SCALARS = (
    "requests",
    "completed",
    "failed",
    "error_rate",
    "duration_s",
    "input_tokens",
    "output_tokens",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_token_throughput",
    "good_requests",
    "goodput_rps",
    "goodput_tok_s",
    "observed_concurrency",
    "tokens_per_chunk",
    "output_estimated",
    "input_estimated",
    "short_outputs",
)


def summary_table(run: BenchRun) -> Table:
    config = run.config
    slo = " SLO " + ", ".join(f"{k}<={v:g}ms" for k, v in config.slo.limits().items()) if config.slo.defined else ""
    title = f"{Path(config.target.model).name} @ {config.target.base_url}  {config.lengths}{slo}"
    table = Table(title=title, title_justify="left")
    for header in ("level", "ok/fail", "req/s", "out tok/s", "tot tok/s", "goodput", "conc"):
        table.add_column(header, justify="right")
    for metric in DISTRIBUTIONS:
        table.add_column(f"{metric.upper()} p50/p99 ms", justify="right")
    for level in run.levels:
        table.add_row(*_row(level))
    table.caption = flags_caption(run)
    return table


def _row(level: LevelMetrics) -> list[str]:
    cells = [
        level.level.label,
        f"{level.completed}/{level.failed}",
        f"{level.request_throughput:.2f}",
        f"{level.output_throughput:.1f}",
        f"{level.total_token_throughput:.1f}",
        f"{level.goodput_rps:.2f}",
        f"{level.observed_concurrency:.2f}",
    ]
    return cells + [_pair(level.distribution(metric)) for metric in DISTRIBUTIONS]


def _pair(distribution: Distribution | None) -> str:
    return "-" if distribution is None else f"{distribution.p50:.1f}/{distribution.p99:.1f}"


def flags_caption(run: BenchRun) -> str:
    notes = [f"input lengths: {run.flags.input_source}", f"ignore_eos: {run.flags.ignore_eos}"]
    if run.flags.output_estimated:
        notes.append("some output counts ESTIMATED (no usage)")
    errors: dict[str, int] = {}
    for level in run.levels:
        for code, count in level.errors.items():
            errors[code] = errors.get(code, 0) + count
    if errors:
        notes.append("errors: " + ", ".join(f"{code} x{count}" for code, count in sorted(errors.items())))
    return f"run {run.id}; " + "; ".join(notes)


def write_json(run: BenchRun, path: Path) -> None:
    path.write_text(json.dumps(run.to_dict(), indent=2), encoding="utf-8")


def csv_rows(run: BenchRun) -> list[dict[str, Any]]:
    rows = []
    for position, level in enumerate(run.levels):
        data = level.to_dict()
        row: dict[str, Any] = {"run_id": run.id, "position": position, "kind": level.level.kind}
        row["value"] = level.level.value
        row.update({name: data[name] for name in SCALARS})
        row["errors"] = ";".join(f"{code}={count}" for code, count in sorted(level.errors.items()))
        for metric in DISTRIBUTIONS:
            distribution = level.distribution(metric)
            for statistic in STATISTICS:
                row[f"{metric}_{statistic}_ms"] = None if distribution is None else distribution.get(statistic)
        rows.append(row)
    return rows


def write_csv(run: BenchRun, path: Path) -> None:
    rows = csv_rows(run)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["run_id"])
        writer.writeheader()
        writer.writerows(rows)
