"""How much memory an engine needs, per device: estimated from GGUF metadata before loading, replaced by
what the engine reports on stderr once it is loaded."""

from __future__ import annotations

from dataclasses import dataclass

from llmhost.config import ModelProfile
from llmhost.models.gguf_meta import GgufMeta

MIB = 1024 * 1024
HOST = "host"
BYTES_PER_ELEMENT = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q4_0": 18 / 32,
    "q4_1": 20 / 32,
    "iq4_nl": 18 / 32,
    "q5_0": 22 / 32,
    "q5_1": 24 / 32,
}
DEFAULT_UBATCH = 512
COMPUTE_MARGIN_MIB = 16.0


@dataclass(frozen=True, slots=True)
class Estimate:
    weights_mib: float
    kv_mib: float
    compute_mib: float

    @property
    def total_mib(self) -> float:
        return self.weights_mib + self.kv_mib + self.compute_mib


def estimate(meta: GgufMeta | None, file_size: int, profile: ModelProfile) -> Estimate:
    """Weights (the file) + KV cache for ctx x slots at the cache type + compute buffers (logits dominate)."""
    weights = file_size / MIB
    if meta is None:
        return Estimate(weights, 0.0, weights * 0.25)
    return Estimate(weights, _kv_mib(meta, profile), _compute_mib(meta, profile))


def _kv_mib(meta: GgufMeta, profile: ModelProfile) -> float:
    layers, heads_kv = meta.block_count or 0, meta.head_count_kv or meta.head_count or 0
    head_dim = (meta.embedding_length or 0) // max(meta.head_count or 1, 1)
    key_dim = (meta.key_length or head_dim) * heads_kv
    value_dim = (meta.value_length or head_dim) * heads_kv
    cells = profile.ctx * profile.parallel
    k_bytes = BYTES_PER_ELEMENT[profile.cache_type_k or "f16"]
    v_bytes = BYTES_PER_ELEMENT[profile.cache_type_v or "f16"]
    return layers * cells * (key_dim * k_bytes + value_dim * v_bytes) / MIB


def _compute_mib(meta: GgufMeta, profile: ModelProfile) -> float:
    ubatch = profile.ubatch or DEFAULT_UBATCH
    logits = (meta.vocab_size or 32000) * ubatch * 4
    activations = (meta.embedding_length or 4096) * ubatch * 4 * 4
    return (logits + activations) / MIB + COMPUTE_MARGIN_MIB


def device_charges(total_mib: float, profile: ModelProfile, gpu_count: int) -> dict[str, float]:
    """Split an engine's memory over the devices it will use: host for CPU engines, GPUs by tensor split."""
    if gpu_count == 0 or profile.gpu_layers == 0:
        return {HOST: total_mib}
    if profile.split_mode == "none" or gpu_count == 1:
        return {f"gpu{profile.main_gpu or 0}": total_mib}
    ratios = list(profile.tensor_split or [1.0] * gpu_count)[:gpu_count]
    whole = sum(ratios)
    return {f"gpu{i}": total_mib * r / whole for i, r in enumerate(ratios) if r > 0}


def pooled(charges: dict[str, float], unified: set[str]) -> dict[str, float]:
    """Charges with every unified-memory GPU's share counted as host memory: such a GPU has no memory of its
    own (e.g. GB10), so the host and it are one pool and must not be budgeted twice."""
    result: dict[str, float] = {}
    for device, mib in charges.items():
        key = HOST if device in unified else device
        result[key] = result.get(key, 0.0) + mib
    return result


def reported_charges(by_device: dict[str, dict[str, float]], gpu_count: int) -> dict[str, float] | None:
    """The engine's own report (llama-server buffer lines) mapped onto our device names."""
    if not by_device:
        return None
    charges: dict[str, float] = {}
    for device, kinds in by_device.items():
        name = _device_name(device) if gpu_count else HOST
        charges[name] = charges.get(name, 0.0) + sum(kinds.values())
    return charges


def _device_name(device: str) -> str:
    for prefix in ("CUDA", "ROCm", "Vulkan", "SYCL", "Metal"):
        if device.startswith(prefix) and device[len(prefix) :].isdigit():
            return f"gpu{device[len(prefix) :]}"
    return HOST
