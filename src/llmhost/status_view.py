"""``llmhost status``: the dashboard snapshot (``/api/metrics/dashboard``) as rich tables."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

MIB = 1024 * 1024


def number(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def render(snapshot: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = [summary(snapshot), gpus(snapshot), engines(snapshot)]
    if snapshot["active_requests"]:
        parts.append(requests(snapshot["active_requests"]))
    return Group(*parts)


def summary(snapshot: dict[str, Any]) -> Text:
    host = snapshot.get("host") or {}
    memory = f"{number(host.get('memory_used_mib'), 0)}/{number(host.get('memory_total_mib'), 0)} MiB"
    return Text(
        f"health {snapshot['health']}   requests/s {snapshot['requests_per_second']:.2f}   "
        f"tokens/s {number(snapshot['tokens_per_second'])}   CPU {number(host.get('cpu_percent'), 0, '%')}   "
        f"memory {memory}   active {len(snapshot['active_requests'])}"
    )


def gpus(snapshot: dict[str, Any]) -> RenderableType:
    if not snapshot["gpus"]:
        reason = snapshot.get("no_gpu_reason")
        return Text(f"no GPU detected{f' ({reason})' if reason else ''}", style="dim")
    table = Table(title="GPUs")
    for column in ("#", "name", "util", "memory MiB", "temp", "power W", "PCIe"):
        table.add_column(column)
    for gpu in snapshot["gpus"]:
        memory = f"{number(gpu['memory_used_mib'], 0)}/{number(gpu['memory_total_mib'], 0)}"
        pcie = f"gen{gpu['pcie_gen'] or '?'} x{gpu['pcie_width'] or '?'}"
        table.add_row(
            str(gpu["index"]),
            gpu["name"] or "—",
            number(gpu["utilization_percent"], 0, "%"),
            memory,
            number(gpu["temperature_c"], 0, "°C"),
            f"{number(gpu['power_draw_w'], 0)}/{number(gpu['power_limit_w'], 0)}",
            pcie,
        )
    return table


def engines(snapshot: dict[str, Any]) -> RenderableType:
    table = Table(title="engines")
    for column in ("model", "state", "pid", "slots busy", "queued", "tokens/s", "KV cache", "memory MiB"):
        table.add_column(column, no_wrap=column == "model")
    for engine in snapshot["engines"]:
        stats, rates = engine["stats"] or {}, engine["rates"] or {}
        busy = sum(1 for slot in stats.get("slots") or [] if slot["is_processing"]) if stats.get("slots") else None
        memory = sum(sum(kinds.values()) for kinds in engine["memory_mib"].values()) or None
        kv = stats.get("kv_cache_usage_ratio")
        table.add_row(
            engine["model"],
            engine["state"],
            str(engine["pid"] or "—"),
            f"{'—' if busy is None else busy}/{engine['parallel']}",
            str(engine["waiting"]),
            number(rates.get("generation_throughput")),
            number(kv * 100 if kv is not None else None, 0, "%"),
            number(memory, 0),
        )
    return table


def requests(active: list[dict[str, Any]]) -> Table:
    table = Table(title="active requests")
    for column in ("id", "dialect", "model", "state", "elapsed", "TTFT", "chunks"):
        table.add_column(column)
    for record in active:
        table.add_row(
            record["id"],
            record["dialect"],
            record["model"],
            record["state"],
            number(record["elapsed_ms"] / 1000, 1, " s"),
            number(record["ttft_ms"], 0, " ms"),
            str(record["chunks"]),
        )
    return table
