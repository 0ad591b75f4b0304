"""llama-server specifics: the argv builder and the stderr memory report.

Pitfalls handled here (see DESIGN.md): always ``--host 127.0.0.1`` and an explicit ``--port``;
``-c ctx*np -np np`` so each slot gets the context the user asked for; ``--metrics`` for
Prometheus counters; log verbosity high enough that the per-device buffer sizes are printed.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from llmhost.config import ModelProfile

# e.g. "load_tensors:   CPU_Mapped model buffer size =    98.35 MiB"
#      "llama_kv_cache:        CPU KV buffer size =    45.00 MiB"
#      "llama_context:      CUDA0 compute buffer size =   66.50 MiB"
BUFFER_LINE = re.compile(
    r"\b(?P<device>[\w.\-]+)\s+(?P<kind>model|KV|compute|output) buffer size =\s*(?P<mib>[\d.]+) MiB"
)


def cpu_cores() -> int:
    """Physical cores this process may use: llama.cpp runs best with one thread per physical core."""
    usable = len(os.sched_getaffinity(0)) or 1
    return max(1, min(usable, psutil.cpu_count(logical=False) or usable))


def default_threads(engines: int = 1) -> int:
    """One engine's share of the cores when ``engines`` engines may serve at once, so that together they never run
    more threads than there are cores. Oversubscribed llama.cpp thread pools collapse (measured on 2 cores: two
    2-thread engines serving together made 7 tok/s in all, two 1-thread engines 110, one 2-thread engine alone 97)."""
    return max(1, cpu_cores() // max(1, engines))


@functools.cache
def cpu_advertises_amx() -> bool:
    """llama.cpp's AMX repack path segfaults at warm-up on VMs that advertise AMX (seen on this
    project's CI machines), so repacking defaults to off there; a profile can turn it back on."""
    try:
        return " amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def embeddings_enabled(profile: ModelProfile) -> bool:
    """This llama.cpp build aborts at start (GGML_ASSERT ggml_can_mul_mat) with --embeddings and a slot
    count that is not a power of two, so such engines serve chat only."""
    parallel = profile.parallel
    return profile.embeddings and parallel & (parallel - 1) == 0


def build_argv(binary: Path, model: Path, profile: ModelProfile, port: int, engines: int = 1) -> list[str]:
    """The full llama-server command line, as a list (never a shell string). ``engines``: how many engines share the
    CPU, for the default thread count."""
    argv = [
        str(binary),
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(profile.ctx * profile.parallel),
        "--parallel",
        str(profile.parallel),
        "--threads",
        str(profile.threads or default_threads(engines)),
        "--metrics",
        "--no-webui",
        "--verbosity",
        "4",
        "--log-colors",
        "off",
    ]
    argv += _optional_flags(profile)
    if not (profile.repack if profile.repack is not None else not cpu_advertises_amx()):
        argv.append("--no-repack")
    if embeddings_enabled(profile):
        argv.append("--embeddings")
        if profile.pooling:
            argv += ["--pooling", profile.pooling]
    return argv + profile.extra_args


def _optional_flags(profile: ModelProfile) -> list[str]:
    flags: list[str] = []
    pairs: list[tuple[str, object]] = [
        ("--threads-batch", profile.threads_batch),
        ("--batch-size", profile.batch),
        ("--ubatch-size", profile.ubatch),
        ("--n-gpu-layers", profile.gpu_layers),
        ("--split-mode", profile.split_mode),
        ("--main-gpu", profile.main_gpu),
        ("--flash-attn", profile.flash_attn),
        ("--cache-type-k", profile.cache_type_k),
        ("--cache-type-v", profile.cache_type_v),
    ]
    for flag, value in pairs:
        if value is not None:
            flags += [flag, str(value)]
    if profile.tensor_split:
        flags += ["--tensor-split", ",".join(f"{v:g}" for v in profile.tensor_split)]
    return flags


@dataclass(slots=True)
class MemoryReport:
    """Buffer sizes the engine printed, MiB per device and kind (model, KV, compute, output)."""

    by_device: dict[str, dict[str, float]] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        match = BUFFER_LINE.search(line)
        if match is None:
            return
        device = match["device"]
        kinds = self.by_device.setdefault(device, {})
        kinds[match["kind"]] = kinds.get(match["kind"], 0.0) + float(match["mib"])

    def total_mib(self) -> float | None:
        if not self.by_device:
            return None
        return sum(sum(kinds.values()) for kinds in self.by_device.values())

    def reset(self) -> None:
        self.by_device.clear()
