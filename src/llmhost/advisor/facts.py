"""What the advisor works from: plain figures gathered once (from the running service or offline), so that
every computation after that is a pure function of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmhost.config import AdvisorSettings, ModelProfile
from llmhost.models.gguf_meta import GgufMeta
from llmhost.telemetry.gpu import GpuSample


@dataclass(frozen=True, slots=True)
class Generation:
    """One finished request of a model, as telemetry recorded it."""

    started_at: float  # wall-clock seconds
    duration_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_per_second: float | None  # the engine's generation speed for this request


@dataclass(frozen=True, slots=True)
class ModelFacts:
    name: str
    source: str  # config, directory, ollama, huggingface
    file_size: int  # bytes of the weights
    meta: GgufMeta | None
    profile: ModelProfile
    ollama_num_ctx: int | None = None  # the Ollama store's params layer, when the model comes from it
    loaded: bool = False
    charges_mib: dict[str, float] = field(default_factory=dict)  # per device ("host", "gpu0"...) while loaded
    charges_reported: bool = False  # True: the engine's own buffer report; False: our estimate
    generations: tuple[Generation, ...] = ()  # recent finished requests, newest first


@dataclass(frozen=True, slots=True)
class PowerReading:
    ts: float  # wall-clock seconds
    watts: dict[int, float]  # GPU index -> measured draw


@dataclass(frozen=True, slots=True)
class Facts:
    gpus: tuple[GpuSample, ...]
    host_total_mib: float
    reserve_mib: float  # kept free on every device (scheduler.reserve_mib)
    models: tuple[ModelFacts, ...]
    settings: AdvisorSettings
    measured: bool  # True: gathered from the running service (engines, telemetry); False: offline
    window_s: float = 3600.0  # how far back measured figures reach
    gpu_budget_mib: float | None = None  # scheduler.gpu_memory_mib, when set
    host_budget_mib: float | None = None  # scheduler.host_memory_mib, when set
    power_history: tuple[PowerReading, ...] = ()  # GPU power samples over the window, oldest first
    gpu_error: str | None = None  # why there is no GPU, when the backend says
