"""JSON views of telemetry: GPU processes are matched to our engines by pid; unknown values stay null."""

from __future__ import annotations

from llmhost.api.telemetry import gpu_view
from llmhost.telemetry.gpu import GpuProcess, GpuSample


def sample(processes: tuple[GpuProcess, ...] | None) -> GpuSample:
    fields = dict.fromkeys(GpuSample.__dataclass_fields__, None)
    fields.update(index=0, name="RTX 3090", unified_memory=False, processes=processes)
    return GpuSample(**fields)  # type: ignore[arg-type]


def test_gpu_processes_are_matched_to_engines_by_pid() -> None:
    view = gpu_view(sample((GpuProcess(111, 900.0), GpuProcess(222, None))), {111: "qwen3:8b"})
    assert view["processes"] == [
        {"pid": 111, "used_mib": 900.0, "model": "qwen3:8b"},
        {"pid": 222, "used_mib": None, "model": None},
    ]
    assert view["temperature_c"] is None  # not measured: null, never 0


def test_a_driver_that_lists_no_processes_stays_null() -> None:
    assert gpu_view(sample(None), {111: "m"})["processes"] is None
