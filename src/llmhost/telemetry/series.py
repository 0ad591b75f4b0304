"""Telemetry as named, labelled numbers in base units: one vocabulary for Prometheus gauges and stored history.

A series name here is the Prometheus name without the ``llmhost_`` prefix. A value that was not measured yields
no point at all, so neither Prometheus nor the history ever shows an unsupported figure as 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from llmhost.telemetry.gpu import GpuSample
from llmhost.telemetry.host import HostSample
from llmhost.telemetry.sampler import TelemetrySample
from llmhost.telemetry.scrape import EngineRates, EngineStats

MIB = 1024 * 1024
MHZ = 1_000_000
KIB = 1024  # NVML's PCIe "KB" is taken as KiB, as nvitop does

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Point:
    series: str
    labels: Labels  # sorted (name, value) pairs
    value: float

    @property
    def key(self) -> str:
        return labels_key(dict(self.labels))


HELP: dict[str, str] = {
    "gpus": "GPUs NVML reports",
    "gpu_utilization_ratio": "Fraction of time the GPU was busy over the driver's sample period",
    "gpu_memory_busy_ratio": "Fraction of time device memory was being read or written",
    "gpu_memory_used_bytes": "GPU memory in use (host memory on unified-memory GPUs)",
    "gpu_memory_total_bytes": "GPU memory size (host memory on unified-memory GPUs)",
    "gpu_memory_free_bytes": "GPU memory free (host memory available on unified-memory GPUs)",
    "gpu_temperature_celsius": "GPU core temperature",
    "gpu_fan_speed_ratio": "GPU fan speed as a fraction of its maximum",
    "gpu_power_watts": "GPU power draw",
    "gpu_power_limit_watts": "GPU enforced power limit",
    "gpu_sm_clock_hertz": "GPU SM clock",
    "gpu_memory_clock_hertz": "GPU memory clock",
    "gpu_pcie_link_generation": "PCIe link generation, current or maximum",
    "gpu_pcie_link_width": "PCIe link width in lanes, current or maximum",
    "gpu_pcie_tx_bytes_per_second": "PCIe transmit throughput",
    "gpu_pcie_rx_bytes_per_second": "PCIe receive throughput",
    "host_cpu_utilization_ratio": "Host CPU utilisation over all cores",
    "host_cpu_core_utilization_ratio": "Host CPU utilisation of one core",
    "host_load1": "Host load average over 1 minute",
    "host_load5": "Host load average over 5 minutes",
    "host_load15": "Host load average over 15 minutes",
    "host_memory_total_bytes": "Host memory size",
    "host_memory_used_bytes": "Host memory in use",
    "host_memory_available_bytes": "Host memory available without swapping",
    "host_swap_total_bytes": "Host swap size",
    "host_swap_used_bytes": "Host swap in use",
    "host_disk_total_bytes": "Size of the filesystem holding the data directory",
    "host_disk_used_bytes": "Used space on the filesystem holding the data directory",
    "host_disk_free_bytes": "Free space on the filesystem holding the data directory",
    "engine_resident_memory_bytes": "Resident memory of an engine process",
    "engine_cpu_ratio": "CPU time of an engine process per second (above 1 when it uses several cores)",
    "engine_prompt_tokens_per_second": "Engine prefill speed while prefilling",
    "engine_generation_tokens_per_second": "Engine decode speed per slot while decoding",
    "engine_prompt_throughput_tokens_per_second": "Prompt tokens processed per second of wall-clock time",
    "engine_generation_throughput_tokens_per_second": "Tokens generated per second of wall-clock time",
    "engine_requests_processing": "Requests the engine is processing",
    "engine_requests_deferred": "Requests the engine deferred",
    "engine_busy_slots": "Engine slots processing a request",
    "engine_kv_cache_usage_ratio": "Engine KV cache usage",
}


def labels_key(labels: Mapping[str, str]) -> str:
    """A stable, parseable text for a label set (JSON with sorted keys)."""
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"), ensure_ascii=False)


def point(series: str, value: float | None, **labels: str) -> Iterator[Point]:
    if value is not None:
        yield Point(series, tuple(sorted(labels.items())), float(value))


def scaled(value: float | None, factor: float) -> float | None:
    return value * factor if value is not None else None


def fraction(percent: float | None) -> float | None:
    return percent / 100 if percent is not None else None


def telemetry_points(sample: TelemetrySample) -> list[Point]:
    points = list(point("gpus", len(sample.gpus)))
    for gpu in sample.gpus:
        points.extend(gpu_points(gpu))
    points.extend(host_points(sample.host))
    return points


def gpu_points(gpu: GpuSample) -> Iterator[Point]:
    ids = {"gpu": str(gpu.index), "name": gpu.name or "", "uuid": gpu.uuid or ""}
    yield from point("gpu_utilization_ratio", fraction(gpu.utilization_percent), **ids)
    yield from point("gpu_memory_busy_ratio", fraction(gpu.memory_utilization_percent), **ids)
    yield from point("gpu_memory_used_bytes", scaled(gpu.memory_used_mib, MIB), **ids)
    yield from point("gpu_memory_total_bytes", scaled(gpu.memory_total_mib, MIB), **ids)
    yield from point("gpu_memory_free_bytes", scaled(gpu.memory_free_mib, MIB), **ids)
    yield from point("gpu_temperature_celsius", gpu.temperature_c, **ids)
    yield from point("gpu_fan_speed_ratio", fraction(gpu.fan_percent), **ids)
    yield from point("gpu_power_watts", gpu.power_draw_w, **ids)
    yield from point("gpu_power_limit_watts", gpu.power_limit_w, **ids)
    yield from point("gpu_sm_clock_hertz", scaled(gpu.sm_clock_mhz, MHZ), **ids)
    yield from point("gpu_memory_clock_hertz", scaled(gpu.memory_clock_mhz, MHZ), **ids)
    yield from point("gpu_pcie_link_generation", gpu.pcie_gen, link="current", **ids)
    yield from point("gpu_pcie_link_generation", gpu.pcie_gen_max, link="max", **ids)
    yield from point("gpu_pcie_link_width", gpu.pcie_width, link="current", **ids)
    yield from point("gpu_pcie_link_width", gpu.pcie_width_max, link="max", **ids)
    yield from point("gpu_pcie_tx_bytes_per_second", scaled(gpu.pcie_tx_kib_per_s, KIB), **ids)
    yield from point("gpu_pcie_rx_bytes_per_second", scaled(gpu.pcie_rx_kib_per_s, KIB), **ids)


def host_points(host: HostSample) -> Iterator[Point]:
    yield from point("host_cpu_utilization_ratio", fraction(host.cpu_percent))
    for core, percent in enumerate(host.cpu_percent_per_core or ()):
        yield from point("host_cpu_core_utilization_ratio", percent / 100, cpu=str(core))
    if host.load_average is not None:
        for window, load in zip((1, 5, 15), host.load_average, strict=True):
            yield from point(f"host_load{window}", load)
    yield from point("host_memory_total_bytes", host.memory_total_mib * MIB)
    yield from point("host_memory_used_bytes", host.memory_used_mib * MIB)
    yield from point("host_memory_available_bytes", host.memory_available_mib * MIB)
    yield from point("host_swap_total_bytes", host.swap_total_mib * MIB)
    yield from point("host_swap_used_bytes", host.swap_used_mib * MIB)
    if host.disk is not None:
        yield from point("host_disk_total_bytes", host.disk.total_mib * MIB, path=host.disk.path)
        yield from point("host_disk_used_bytes", host.disk.used_mib * MIB, path=host.disk.path)
        yield from point("host_disk_free_bytes", host.disk.free_mib * MIB, path=host.disk.path)
    for process in host.processes:
        yield from point("engine_resident_memory_bytes", scaled(process.rss_mib, MIB), model=process.name)
        yield from point("engine_cpu_ratio", fraction(process.cpu_percent), model=process.name)


def engine_points(model: str, stats: EngineStats, rates: EngineRates | None) -> list[Point]:
    """An engine's scraped figures, for history (Prometheus gets the engine's own series instead)."""
    points = [
        *point("engine_requests_processing", stats.requests_processing, model=model),
        *point("engine_requests_deferred", stats.requests_deferred, model=model),
        *point("engine_busy_slots", stats.busy_slots, model=model),
        *point("engine_kv_cache_usage_ratio", stats.kv_cache_usage_ratio, model=model),
    ]
    if rates is not None:
        points += [
            *point("engine_prompt_tokens_per_second", rates.prompt_tokens_per_second, model=model),
            *point("engine_generation_tokens_per_second", rates.generation_tokens_per_second, model=model),
            *point("engine_prompt_throughput_tokens_per_second", rates.prompt_throughput, model=model),
            *point("engine_generation_throughput_tokens_per_second", rates.generation_throughput, model=model),
        ]
    return points
