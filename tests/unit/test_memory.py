"""Memory per engine: the GGUF estimate (checked against the real default model), per-device charges, the
engine's own report mapped onto device names, and the scheduler's budgets with a fake GPU backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from conftest import model_file
from llmhost.config import ModelProfile, SchedulerSettings, Settings
from llmhost.engines import memory
from llmhost.engines.llamaserver import MemoryReport
from llmhost.engines.scheduler import ModelSlot, Scheduler
from llmhost.models.catalog import ModelEntry
from llmhost.models.gguf_meta import GgufMeta, read_gguf_meta
from llmhost.telemetry.gpu import GpuBackend, GpuMemory

# What llama-server of this build reports for the default model with ctx 4096 and one slot (CPU):
# model 92.1 (CPU_Mapped) + KV 90.0 + compute 101.14 + output 0.19 MiB.
ENGINE_REPORTED_4096_MIB = 92.1 + 90.0 + 101.14 + 0.19  # 283.43


@pytest.fixture(scope="module")
def meta() -> GgufMeta:
    return read_gguf_meta(model_file())


# --- the estimate -----------------------------------------------------------------------------------


def test_kv_cache_f16_is_exact(meta: GgufMeta) -> None:
    est = memory.estimate(meta, meta.file_size, ModelProfile(ctx=4096, parallel=1))
    # 30 layers x 4096 cells x 3 KV heads x 64 dims x 2 (K and V) x 2 bytes
    assert est.kv_mib == 30 * 4096 * 3 * 64 * 2 * 2 / memory.MIB == 90.0


def test_kv_cache_scales_with_context_times_slots(meta: GgufMeta) -> None:
    one = memory.estimate(meta, meta.file_size, ModelProfile(ctx=1024, parallel=1)).kv_mib
    assert one == 22.5
    assert memory.estimate(meta, meta.file_size, ModelProfile(ctx=1024, parallel=4)).kv_mib == 4 * one
    assert memory.estimate(meta, meta.file_size, ModelProfile(ctx=4096, parallel=1)).kv_mib == 4 * one


def test_kv_cache_q8_0(meta: GgufMeta) -> None:
    profile = ModelProfile(ctx=4096, cache_type_k="q8_0", cache_type_v="q8_0")
    est = memory.estimate(meta, meta.file_size, profile)
    assert est.kv_mib == pytest.approx(90.0 * 34 / 64)


def test_kv_cache_mixed_types(meta: GgufMeta) -> None:
    profile = ModelProfile(ctx=4096, cache_type_k="q8_0")  # V stays f16
    est = memory.estimate(meta, meta.file_size, profile)
    assert est.kv_mib == pytest.approx(45.0 * 34 / 64 + 45.0)


def test_weights_are_the_file_size(meta: GgufMeta) -> None:
    est = memory.estimate(meta, meta.file_size, ModelProfile())
    assert est.weights_mib == model_file().stat().st_size / memory.MIB


def test_total_within_15_percent_of_the_engine_report(meta: GgufMeta) -> None:
    est = memory.estimate(meta, meta.file_size, ModelProfile(ctx=4096, parallel=1))
    assert est.total_mib == est.weights_mib + est.kv_mib + est.compute_mib
    assert est.total_mib == pytest.approx(ENGINE_REPORTED_4096_MIB, rel=0.15)
    # and it errs on the safe side: an estimate below the real use would overcommit the budget
    assert est.total_mib >= ENGINE_REPORTED_4096_MIB


def test_estimate_without_metadata_is_file_plus_a_quarter() -> None:
    est = memory.estimate(None, 400 * memory.MIB, ModelProfile())
    assert (est.weights_mib, est.kv_mib, est.compute_mib) == (400.0, 0.0, 100.0)
    assert est.total_mib == 500.0


# --- charges per device -----------------------------------------------------------------------------


def test_cpu_engine_charges_host() -> None:
    assert memory.device_charges(300.0, ModelProfile(), gpu_count=0) == {"host": 300.0}


def test_gpu_layers_zero_charges_host_even_with_gpus() -> None:
    assert memory.device_charges(300.0, ModelProfile(gpu_layers=0), gpu_count=2) == {"host": 300.0}


def test_single_gpu_charges_main_gpu() -> None:
    assert memory.device_charges(300.0, ModelProfile(), gpu_count=1) == {"gpu0": 300.0}
    assert memory.device_charges(300.0, ModelProfile(gpu_layers="all"), gpu_count=1) == {"gpu0": 300.0}


def test_split_mode_none_charges_only_main_gpu() -> None:
    profile = ModelProfile(split_mode="none", main_gpu=1, tensor_split=[3, 1])
    assert memory.device_charges(300.0, profile, gpu_count=2) == {"gpu1": 300.0}
    assert memory.device_charges(300.0, ModelProfile(split_mode="none"), gpu_count=2) == {"gpu0": 300.0}


def test_tensor_split_three_to_one() -> None:
    charges = memory.device_charges(400.0, ModelProfile(tensor_split=[3, 1]), gpu_count=2)
    assert charges == {"gpu0": 300.0, "gpu1": 100.0}


def test_even_split_without_tensor_split() -> None:
    assert memory.device_charges(400.0, ModelProfile(), gpu_count=2) == {"gpu0": 200.0, "gpu1": 200.0}


def test_zero_ratio_gpu_is_not_charged() -> None:
    assert memory.device_charges(400.0, ModelProfile(tensor_split=[0, 1]), gpu_count=2) == {"gpu1": 400.0}


# --- the engine's report ----------------------------------------------------------------------------

CPU_LINES = [
    "load_tensors:   CPU_Mapped model buffer size =    92.10 MiB",
    "llama_context:        CPU  output buffer size =     0.19 MiB",
    "llama_kv_cache:        CPU KV buffer size =    90.00 MiB",
    "llama_context:        CPU compute buffer size =   101.14 MiB",
]
GPU_LINES = [
    "load_tensors:   CPU_Mapped model buffer size =    10.00 MiB",
    "load_tensors:        CUDA0 model buffer size =   300.00 MiB",
    "load_tensors:        CUDA1 model buffer size =   100.00 MiB",
    "llama_kv_cache:      CUDA0 KV buffer size =    60.00 MiB",
    "llama_kv_cache:      CUDA1 KV buffer size =    20.00 MiB",
    "llama_context:      CUDA0 compute buffer size =   66.50 MiB",
    "llama_context:  CUDA_Host compute buffer size =     4.00 MiB",
]


def report(lines: list[str]) -> dict[str, dict[str, float]]:
    parsed = MemoryReport()
    for line in lines:
        parsed.feed(line)
    return parsed.by_device


def test_reported_cpu_engine_is_all_host() -> None:
    charges = memory.reported_charges(report(CPU_LINES), gpu_count=0)
    assert charges is not None
    assert charges == {"host": pytest.approx(ENGINE_REPORTED_4096_MIB)}


def test_reported_gpu_devices_map_to_gpu_names() -> None:
    charges = memory.reported_charges(report(GPU_LINES), gpu_count=2)
    assert charges is not None
    assert charges.keys() == {"host", "gpu0", "gpu1"}
    assert charges["gpu0"] == pytest.approx(300 + 60 + 66.5)
    assert charges["gpu1"] == pytest.approx(100 + 20)
    assert charges["host"] == pytest.approx(10 + 4)  # CPU_Mapped and CUDA_Host are host memory


def test_reported_without_gpus_charges_everything_to_host() -> None:
    charges = memory.reported_charges(report(GPU_LINES), gpu_count=0)
    assert charges == {"host": pytest.approx(10 + 300 + 100 + 60 + 20 + 66.5 + 4)}


def test_nothing_reported_yet_is_none() -> None:
    assert memory.reported_charges({}, gpu_count=2) is None


# --- budgets with a fake GPU backend ----------------------------------------------------------------


class FakeGpus:
    """The GPU boundary for tests: fixed devices, no driver."""

    def __init__(self, *devices: tuple[float, float]) -> None:
        self.devices = [GpuMemory(index=i, total_mib=total, free_mib=free) for i, (total, free) in enumerate(devices)]

    def memory(self) -> list[GpuMemory]:
        return list(self.devices)


def scheduler(tmp_path: Path, gpus: GpuBackend | None, **scheduler_settings: object) -> Scheduler:
    settings = Settings(data_dir=tmp_path, scheduler=SchedulerSettings(**scheduler_settings))  # type: ignore[arg-type]
    return Scheduler(settings, binary=None, gpus=gpus)


def test_fake_backend_satisfies_the_protocol() -> None:
    backend: GpuBackend = FakeGpus((8192, 8000))
    assert backend.memory() == [GpuMemory(0, 8192, 8000)]


def test_capacity_two_gpus_total_minus_reserve(tmp_path: Path) -> None:
    sched = scheduler(tmp_path, FakeGpus((24576, 20000), (8192, 100)), host_memory_mib=4096, reserve_mib=512)
    assert sched.capacity() == {"host": 4096, "gpu0": 24576 - 512, "gpu1": 8192 - 512}


def test_capacity_gpu_memory_mib_overrides_every_gpu(tmp_path: Path) -> None:
    sched = scheduler(tmp_path, FakeGpus((24576, 1), (8192, 1)), host_memory_mib=2048, gpu_memory_mib=6000)
    assert sched.capacity() == {"host": 2048, "gpu0": 6000, "gpu1": 6000}


def test_capacity_host_defaults_to_ram_minus_reserve(tmp_path: Path) -> None:
    sched = scheduler(tmp_path, FakeGpus(), reserve_mib=1000)
    ram = psutil.virtual_memory().total / memory.MIB
    assert sched.capacity() == {"host": pytest.approx(ram - 1000)}


def test_capacity_without_gpu_backend_is_host_only(tmp_path: Path) -> None:
    assert scheduler(tmp_path, None, host_memory_mib=777).capacity() == {"host": 777}


def test_scheduler_charges_the_estimate_by_tensor_split_before_loading(tmp_path: Path, meta: GgufMeta) -> None:
    sched = scheduler(tmp_path, FakeGpus((8192, 8192), (8192, 8192)), host_memory_mib=1024)
    path = model_file()
    entry = ModelEntry("split", path, "config", meta.file_size, 0.0, meta)
    profile = ModelProfile(ctx=4096, tensor_split=[3, 1])
    slot = sched.slot(entry, profile)
    assert slot.engine is None
    total = memory.estimate(meta, meta.file_size, profile).total_mib
    assert sched.charges(slot) == {"gpu0": pytest.approx(total * 0.75), "gpu1": pytest.approx(total * 0.25)}
    assert sched.charges(slot, gpu_count=0) == {"host": pytest.approx(total)}


class UnifiedGpu(FakeGpus):
    """A GB10-like GPU: no memory of its own, it reports the host's."""

    def __init__(self, total: float) -> None:
        self.devices = [GpuMemory(index=0, total_mib=total, free_mib=total, unified=True)]


def test_a_unified_memory_gpu_is_not_budgeted_twice(tmp_path: Path, meta: GgufMeta) -> None:
    sched = scheduler(tmp_path, UnifiedGpu(131072), host_memory_mib=120_000)
    assert sched.capacity() == {"host": 120_000}  # not host + another 128 GiB for gpu0
    entry = ModelEntry("m", model_file(), "config", meta.file_size, 0.0, meta)
    slot = sched.slot(entry, ModelProfile(ctx=4096))
    total = memory.estimate(meta, meta.file_size, slot.profile).total_mib
    assert sched.charges(slot) == {"gpu0": pytest.approx(total)}  # where llama.cpp puts it, as shown to users
    assert sched.pooled(sched.charges(slot)) == {"host": pytest.approx(total)}  # what the budget counts
    assert memory.pooled({"gpu0": 10.0, "gpu1": 5.0, "host": 1.0}, {"gpu0"}) == {"host": 11.0, "gpu1": 5.0}


def test_an_engine_shares_the_cpu_with_the_engines_that_may_serve_beside_it(tmp_path: Path, meta: GgufMeta) -> None:
    def slot(sched: Scheduler, name: str) -> ModelSlot:
        return sched.slot(ModelEntry(name, model_file(), "config", meta.file_size, 0.0, meta), ModelProfile())

    capped = scheduler(tmp_path, None, max_loaded=3)
    assert capped.sharing_cpu(slot(capped, "a")) == 3  # the declared maximum, even before others load
    free = scheduler(tmp_path, None)
    first, second = slot(free, "a"), slot(free, "b")
    assert free.sharing_cpu(first) == 1
    first.engine = object()  # type: ignore[assignment]  # an engine assigned: loading or serving
    assert first.loaded and free.sharing_cpu(second) == 2 and free.sharing_cpu(first) == 1


async def test_only_cpu_engines_restart_to_share_the_cores(
    tmp_path: Path, meta: GgufMeta, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llmhost.engines.scheduler.default_threads", lambda engines: 4 // engines)
    restarted: list[str] = []

    async def restart(slot: ModelSlot) -> None:
        restarted.append(slot.name)

    def loaded(sched: Scheduler, name: str, **profile: object) -> ModelSlot:
        slot = sched.slot(ModelEntry(name, model_file(), "config", meta.file_size, 0.0, meta), ModelProfile(**profile))
        slot.engine = type("Started", (), {"engines": 1})()  # type: ignore[assignment]  # took all 4 cores
        return slot

    for gpus, expected in ((None, ["cpu", "gpu"]), (FakeGpus((8192, 8000)), ["cpu"])):
        sched = scheduler(tmp_path, gpus)
        monkeypatch.setattr(sched, "_restart_to_share", restart)
        loaded(sched, "cpu", gpu_layers=0)
        loaded(sched, "gpu")
        loaded(sched, "fixed", threads=4)  # a profile's own threads are never changed
        sched._share_cores(loaded(sched, "new"))
        await asyncio.gather(*sched._background)
        assert sorted(restarted) == expected, gpus
        restarted.clear()
