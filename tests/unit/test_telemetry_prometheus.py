"""The Prometheus exposition, generated and parsed back with prometheus_client's own parser."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from llmhost.telemetry.gpu import GpuSample
from llmhost.telemetry.host import HostProbe
from llmhost.telemetry.prometheus import EngineInfo, MetricSources, RequestMetrics, build_registry
from llmhost.telemetry.requests import RequestState, RequestTracker
from llmhost.telemetry.sampler import TelemetrySample

MIB = 1024 * 1024
ENGINE_METRICS = """\
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 16
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 1
"""
UNIT_SUFFIXES = ("_total", "_bytes", "_seconds", "_ratio", "_celsius", "_watts", "_hertz", "_per_second")
UNITLESS = {"llmhost_gpus", "llmhost_host_load1", "llmhost_host_load5", "llmhost_host_load15"}
COUNTS = {"llmhost_queue_depth", "llmhost_requests_in_flight", "llmhost_requests_active", "llmhost_engine_state"}
PCIE_LINK = {"llmhost_gpu_pcie_link_generation", "llmhost_gpu_pcie_link_width"}


def gpu(index: int, **changes: object) -> GpuSample:
    values: dict[str, object] = {
        "index": index,
        "name": "NVIDIA GeForce RTX 3090",
        "uuid": f"GPU-{index}",
        "pci_bus_id": f"00000000:0{index + 1}:00.0",
        "utilization_percent": 37.0,
        "memory_utilization_percent": 12.0,
        "memory_used_mib": 1024.0,
        "memory_total_mib": 24576.0,
        "memory_free_mib": 23552.0,
        "unified_memory": False,
        "temperature_c": 54.0,
        "fan_percent": 41.0,
        "power_draw_w": 123.5,
        "power_limit_w": 350.0,
        "sm_clock_mhz": 1695.0,
        "memory_clock_mhz": 9751.0,
        "pcie_gen": 3,
        "pcie_width": 16,
        "pcie_gen_max": 4,
        "pcie_width_max": 16,
        "pcie_tx_kib_per_s": 2048.0,
        "pcie_rx_kib_per_s": 512.0,
        "processes": (),
    }
    return GpuSample(**{**values, **changes})  # type: ignore[arg-type]


@pytest.fixture
def telemetry(tmp_path: Path) -> TelemetrySample:
    probe = HostProbe(tmp_path)
    probe.sample({"smol": os.getpid()})
    time.sleep(0.05)
    host = probe.sample({"smol": os.getpid()})
    gpus = (gpu(0), gpu(1, fan_percent=None, power_limit_w=None, name="NVIDIA RTX A4000"))
    return TelemetrySample(ts=time.time(), gpus=gpus, host=host)


def families(metrics: RequestMetrics, sources: MetricSources) -> dict[str, Metric]:
    text = generate_latest(build_registry(sources, metrics)).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def values(family: Metric, suffix: str = "") -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if sample.name == family.name + suffix
    }


def by(family: Metric, label: str, suffix: str = "") -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in values(family, suffix).items()}


def test_gpu_gauges_in_base_units_and_unsupported_left_out(telemetry: TelemetrySample) -> None:
    parsed = families(RequestMetrics(), MetricSources(telemetry=lambda: telemetry))

    assert values(parsed["llmhost_gpus"]) == {(): 2.0}
    utilization = parsed["llmhost_gpu_utilization_ratio"]
    assert values(utilization) == {
        (("gpu", "0"), ("name", "NVIDIA GeForce RTX 3090"), ("uuid", "GPU-0")): 0.37,
        (("gpu", "1"), ("name", "NVIDIA RTX A4000"), ("uuid", "GPU-1")): 0.37,
    }
    assert by(parsed["llmhost_gpu_memory_used_bytes"], "gpu") == {"0": 1024 * MIB, "1": 1024 * MIB}
    assert by(parsed["llmhost_gpu_temperature_celsius"], "gpu") == {"0": 54.0, "1": 54.0}
    assert by(parsed["llmhost_gpu_power_watts"], "gpu") == {"0": 123.5, "1": 123.5}
    assert by(parsed["llmhost_gpu_fan_speed_ratio"], "gpu") == {"0": 0.41}  # GPU 1 has no fan reading: no sample
    assert by(parsed["llmhost_gpu_power_limit_watts"], "gpu") == {"0": 350.0}
    assert by(parsed["llmhost_gpu_sm_clock_hertz"], "gpu") == {"0": 1695e6, "1": 1695e6}
    assert by(parsed["llmhost_gpu_pcie_tx_bytes_per_second"], "gpu") == {"0": 2048 * 1024, "1": 2048 * 1024}
    assert by(parsed["llmhost_gpu_pcie_link_generation"], "link") == {"current": 3, "max": 4}


def test_a_family_with_no_measurement_is_absent(telemetry: TelemetrySample) -> None:
    no_fans = TelemetrySample(telemetry.ts, tuple(gpu(index, fan_percent=None) for index in (0, 1)), telemetry.host)

    parsed = families(RequestMetrics(), MetricSources(telemetry=lambda: no_fans))

    assert "llmhost_gpu_fan_speed_ratio" not in parsed
    assert "llmhost_gpu_power_watts" in parsed


def test_host_and_engine_process_gauges(telemetry: TelemetrySample) -> None:
    parsed = families(RequestMetrics(), MetricSources(telemetry=lambda: telemetry))

    host = telemetry.host
    assert values(parsed["llmhost_host_memory_total_bytes"]) == {(): host.memory_total_mib * MIB}
    assert 0 <= values(parsed["llmhost_host_cpu_utilization_ratio"])[()] <= 1
    assert len(values(parsed["llmhost_host_cpu_core_utilization_ratio"])) == os.cpu_count()
    assert host.disk is not None
    assert set(values(parsed["llmhost_host_disk_free_bytes"])) == {(("path", host.disk.path),)}
    assert by(parsed["llmhost_engine_resident_memory_bytes"], "model")["smol"] > 0
    assert "smol" in by(parsed["llmhost_engine_cpu_ratio"], "model")


def test_request_counters_and_histograms() -> None:
    metrics = RequestMetrics()
    tracker = RequestTracker(on_finish=metrics.observe)
    for status in (200, 200, 503):
        record = tracker.start("openai", "smol")
        tracker.transition(record.id, RequestState.PREFILL)
        tracker.output(record.id)
        state = RequestState.DONE if status == 200 else RequestState.ERROR
        tracker.finish(record.id, state, status=status, prompt_tokens=7, completion_tokens=3 if status == 200 else None)
    tracker.start("ollama", "gemma")  # still queued

    parsed = families(metrics, MetricSources(active_requests=tracker.active))

    requests = values(parsed["llmhost_requests"], "_total")
    assert requests == {
        (("code", "200"), ("dialect", "openai"), ("model", "smol"), ("status", "done")): 2.0,
        (("code", "503"), ("dialect", "openai"), ("model", "smol"), ("status", "error")): 1.0,
    }
    assert values(parsed["llmhost_prompt_tokens"], "_total") == {(("dialect", "openai"), ("model", "smol")): 21.0}
    assert values(parsed["llmhost_completion_tokens"], "_total") == {(("dialect", "openai"), ("model", "smol")): 6.0}
    ttft = parsed["llmhost_request_ttft_seconds"]
    assert ttft.type == "histogram"
    assert values(ttft, "_count") == {(("dialect", "openai"), ("model", "smol")): 3.0}
    assert values(parsed["llmhost_request_duration_seconds"], "_count") == {
        (("dialect", "openai"), ("model", "smol")): 3.0
    }
    assert values(parsed["llmhost_requests_active"]) == {
        (("dialect", "ollama"), ("model", "gemma"), ("state", "queued")): 1.0
    }


def test_engine_state_memory_and_queues() -> None:
    engines = [
        EngineInfo("smol", "ready", {"CPU": {"model": 98.5, "kv": 24.0}}, queue_depth=2, in_flight=1),
        EngineInfo("gemma", "starting"),
    ]

    parsed = families(RequestMetrics(), MetricSources(engines=lambda: engines))

    states = values(parsed["llmhost_engine_state"])
    assert states[(("model", "smol"), ("state", "ready"))] == 1.0
    assert states[(("model", "smol"), ("state", "stopped"))] == 0.0
    assert sum(value for labels, value in states.items() if ("model", "gemma") in labels) == 1.0
    assert values(parsed["llmhost_engine_memory_bytes"]) == {
        (("device", "CPU"), ("kind", "kv"), ("model", "smol")): 24.0 * MIB,
        (("device", "CPU"), ("kind", "model"), ("model", "smol")): 98.5 * MIB,
    }
    assert by(parsed["llmhost_queue_depth"], "model") == {"smol": 2.0, "gemma": 0.0}
    assert by(parsed["llmhost_requests_in_flight"], "model") == {"smol": 1.0, "gemma": 0.0}


def test_engine_series_pass_through_with_a_model_label() -> None:
    texts = {"smol": ENGINE_METRICS, "gemma": ENGINE_METRICS.replace("predicted_total 16", "predicted_total 4")}

    parsed = families(RequestMetrics(), MetricSources(engine_metrics=lambda: texts))

    predicted = parsed["llamacpp:tokens_predicted"]
    assert by(predicted, "model", "_total") == {"smol": 16.0, "gemma": 4.0}
    assert by(parsed["llamacpp:requests_processing"], "model") == {"smol": 1.0, "gemma": 1.0}


def test_names_follow_prometheus_conventions(telemetry: TelemetrySample) -> None:
    metrics = RequestMetrics()
    tracker = RequestTracker(on_finish=metrics.observe)
    record = tracker.start("openai", "smol")
    tracker.finish(record.id, RequestState.CANCELLED)
    sources = MetricSources(
        telemetry=lambda: telemetry, active_requests=tracker.active, engines=lambda: [EngineInfo("smol", "ready")]
    )

    text = generate_latest(build_registry(sources, metrics)).decode()
    parsed = {family.name: family for family in text_string_to_metric_families(text)}

    ours = [name for name in parsed if name.startswith("llmhost_")]
    assert ours and all(re.fullmatch(r"[a-z_][a-z0-9_]*", name) for name in ours)
    for name, family in parsed.items():
        if not name.startswith("llmhost_") or name.endswith("_created"):
            continue
        if family.type == "counter":
            assert all(sample.name.endswith(("_total", "_created")) for sample in family.samples), name
        else:
            assert name in UNITLESS | COUNTS | PCIE_LINK or name.endswith(UNIT_SUFFIXES), name


def test_registries_are_private() -> None:
    first = generate_latest(build_registry(MetricSources(), RequestMetrics())).decode()
    second = generate_latest(build_registry(MetricSources(), RequestMetrics())).decode()

    assert first == second
    assert "llmhost_" not in generate_latest(REGISTRY).decode()
    assert all(not family.samples for family in text_string_to_metric_families(first) if "requests" in family.name)
