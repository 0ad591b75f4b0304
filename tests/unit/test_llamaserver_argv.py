"""llama-server command line and the stderr memory report (engines/llamaserver.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from llmhost.config import ModelProfile
from llmhost.engines.llamaserver import MemoryReport, build_argv, cpu_advertises_amx, default_threads

BINARY = Path("/opt/llama/llama-server")
MODEL = Path("/models/m.gguf")


def flag_value(argv: list[str], flag: str) -> str:
    assert argv.count(flag) == 1, f"{flag} appears {argv.count(flag)} times in {argv}"
    return argv[argv.index(flag) + 1]


def test_argv_basics() -> None:
    argv = build_argv(BINARY, MODEL, ModelProfile(ctx=2048, parallel=3), port=40123)
    assert isinstance(argv, list)
    assert all(isinstance(arg, str) for arg in argv)
    assert argv[0] == str(BINARY)
    assert flag_value(argv, "--model") == str(MODEL)
    assert flag_value(argv, "--host") == "127.0.0.1"
    assert flag_value(argv, "--port") == "40123"
    assert flag_value(argv, "--ctx-size") == str(2048 * 3)
    assert flag_value(argv, "--parallel") == "3"
    assert "--metrics" in argv
    assert flag_value(argv, "--threads") == str(default_threads())


def test_argv_defaults_have_no_optional_flags() -> None:
    argv = build_argv(BINARY, MODEL, ModelProfile(), port=1)
    for flag in (
        "--threads-batch",
        "--batch-size",
        "--ubatch-size",
        "--n-gpu-layers",
        "--split-mode",
        "--main-gpu",
        "--flash-attn",
        "--cache-type-k",
        "--cache-type-v",
        "--tensor-split",
    ):
        assert flag not in argv
    assert flag_value(argv, "--ctx-size") == "4096"
    assert flag_value(argv, "--parallel") == "1"
    # embeddings are on by default, with mean pooling
    assert "--embeddings" in argv
    assert flag_value(argv, "--pooling") == "mean"


def test_argv_optional_flags_when_set() -> None:
    profile = ModelProfile(
        threads=6,
        threads_batch=8,
        batch=1024,
        ubatch=256,
        gpu_layers="all",
        tensor_split=[3, 1],
        split_mode="layer",
        main_gpu=1,
        flash_attn="on",
        cache_type_k="q8_0",
        cache_type_v="q4_0",
    )
    argv = build_argv(BINARY, MODEL, profile, port=5)
    assert flag_value(argv, "--threads") == "6"
    assert flag_value(argv, "--threads-batch") == "8"
    assert flag_value(argv, "--batch-size") == "1024"
    assert flag_value(argv, "--ubatch-size") == "256"
    assert flag_value(argv, "--n-gpu-layers") == "all"
    assert flag_value(argv, "--tensor-split") == "3,1"
    assert flag_value(argv, "--split-mode") == "layer"
    assert flag_value(argv, "--main-gpu") == "1"
    assert flag_value(argv, "--flash-attn") == "on"
    assert flag_value(argv, "--cache-type-k") == "q8_0"
    assert flag_value(argv, "--cache-type-v") == "q4_0"


@pytest.mark.parametrize(
    ("split", "text"),
    [([3, 1], "3,1"), ([0.5, 0.25, 0.25], "0.5,0.25,0.25"), ([1, 0], "1,0")],
)
def test_tensor_split_format(split: list[float], text: str) -> None:
    argv = build_argv(BINARY, MODEL, ModelProfile(tensor_split=split), port=5)
    assert flag_value(argv, "--tensor-split") == text


def test_gpu_layers_integer_zero_is_passed() -> None:
    argv = build_argv(BINARY, MODEL, ModelProfile(gpu_layers=0), port=5)
    assert flag_value(argv, "--n-gpu-layers") == "0"


def test_extra_args_are_last() -> None:
    extra = ["--jinja", "--temp", "0.7"]
    argv = build_argv(BINARY, MODEL, ModelProfile(extra_args=extra, tensor_split=[1, 1]), port=5)
    assert argv[-3:] == extra


def test_embeddings_off() -> None:
    argv = build_argv(BINARY, MODEL, ModelProfile(embeddings=False), port=5)
    assert "--embeddings" not in argv
    assert "--pooling" not in argv


def test_embeddings_without_pooling() -> None:
    argv = build_argv(BINARY, MODEL, ModelProfile(pooling=None), port=5)
    assert "--embeddings" in argv
    assert "--pooling" not in argv


def test_repack_flag() -> None:
    assert "--no-repack" in build_argv(BINARY, MODEL, ModelProfile(repack=False), port=5)
    assert "--no-repack" not in build_argv(BINARY, MODEL, ModelProfile(repack=True), port=5)
    default = build_argv(BINARY, MODEL, ModelProfile(), port=5)
    assert ("--no-repack" in default) == cpu_advertises_amx()


@pytest.mark.parametrize("reserved", ["--port", "--host", "-m", "--model"])
def test_extra_args_may_not_set_reserved_flags(reserved: str) -> None:
    with pytest.raises(ValidationError, match="extra_args"):
        ModelProfile(extra_args=[reserved, "1"])


def test_extra_args_port_rejected() -> None:
    with pytest.raises(ValidationError, match=r"--port"):
        ModelProfile(extra_args=["--port", "1"])


# MemoryReport --------------------------------------------------------------------------------

# Real stderr lines from this build (CPU, AMX repack on), plus one CUDA line.
REAL_LINES = [
    "0.00.154.405 I load_tensors:          AMX model buffer size =    95.34 MiB",
    "0.00.154.429 I load_tensors:   CPU_Mapped model buffer size =    92.10 MiB",
    "0.00.462.668 I llama_context:        CPU  output buffer size =     0.19 MiB",
    "0.00.462.773 I llama_kv_cache:        CPU KV buffer size =    90.00 MiB",
    "0.00.508.154 I sched_reserve:        CPU compute buffer size =   101.14 MiB",
    "llama_kv_cache:      CUDA0 KV buffer size =   448.00 MiB",
]


def test_memory_report_real_lines() -> None:
    report = MemoryReport()
    assert report.total_mib() is None
    for line in REAL_LINES:
        report.feed(line)
    # the output buffer (logits; grows with vocabulary x slots) counts too
    assert report.by_device == {
        "AMX": {"model": 95.34},
        "CPU_Mapped": {"model": 92.10},
        "CPU": {"output": 0.19, "KV": 90.00, "compute": 101.14},
        "CUDA0": {"KV": 448.00},
    }
    assert report.total_mib() == pytest.approx(95.34 + 92.10 + 90.00 + 101.14 + 0.19 + 448.00)


def test_memory_report_ignores_other_lines_and_sums_repeats() -> None:
    report = MemoryReport()
    for line in [
        "0.00.100.000 I main: loading model",
        "llama_context:      CUDA0 compute buffer size =   66.50 MiB",
        "llama_context:      CUDA0 compute buffer size =    3.50 MiB",
        "llama_context:  CUDA_Host compute buffer size =    8.01 MiB",
        "print_info: file size   = 98.35 MiB (4.50 BPW)",
    ]:
        report.feed(line)
    assert report.by_device == {"CUDA0": {"compute": 70.0}, "CUDA_Host": {"compute": 8.01}}
    assert report.total_mib() == pytest.approx(78.01)
    report.reset()
    assert report.by_device == {}
    assert report.total_mib() is None


@pytest.mark.parametrize(("cores", "engines", "threads"), [(16, 1, 16), (16, 2, 8), (16, 3, 5), (2, 2, 1), (2, 5, 1)])
def test_engines_share_the_physical_cores_and_never_oversubscribe(
    monkeypatch: pytest.MonkeyPatch, cores: int, engines: int, threads: int
) -> None:
    monkeypatch.setattr("llmhost.engines.llamaserver.cpu_cores", lambda: cores)
    assert default_threads(engines) == threads
    assert engines * threads <= cores or threads == 1
    argv = build_argv(BINARY, MODEL, ModelProfile(), port=5, engines=engines)
    assert flag_value(argv, "--threads") == str(threads)
    assert flag_value(build_argv(BINARY, MODEL, ModelProfile(threads=3), port=5, engines=engines), "--threads") == "3"


def test_cores_are_physical_and_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmhost.engines import llamaserver

    monkeypatch.setattr(llamaserver.psutil, "cpu_count", lambda logical=True: 8 if logical else 4)
    monkeypatch.setattr(llamaserver.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert llamaserver.cpu_cores() == 4  # hyper-threads are not cores
    monkeypatch.setattr(llamaserver.os, "sched_getaffinity", lambda pid: {0, 1})
    assert llamaserver.cpu_cores() == 2  # taskset / cgroup limits win
