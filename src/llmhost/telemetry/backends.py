"""Which GPU backend the service uses, from the ``gpu_backend`` setting."""

from __future__ import annotations

from llmhost.config import Settings
from llmhost.telemetry.gpu import Gpus, NoGpu


def make_gpus(settings: Settings) -> Gpus:
    if settings.gpu_backend == "nvml":
        from llmhost.telemetry.nvml import NvmlBackend

        return NvmlBackend()
    if settings.gpu_backend == "fake":
        from llmhost.telemetry.fake_gpus import FakeGpus, rig

        return FakeGpus(rig(settings.fake_gpus))
    return NoGpu()
