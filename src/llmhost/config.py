"""Configuration: YAML file < LLMHOST_* environment < CLI flags (pydantic-settings).

The YAML file is the platformdirs config path (``~/.config/llmhost/config.yaml``) unless ``--config``
or ``LLMHOST_CONFIG`` names another. Unknown keys are errors, so a typo never goes unnoticed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from llmhost.telemetry.fake_gpus import RIGS, FakeGpu

APP_NAME = "llmhost"
DEFAULT_PORT = 11436
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

KvCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.yaml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelProfile(Strict):
    """The llama-server parameters a user tunes for one model, plus how it is scheduled."""

    path: Path | None = Field(None, description="GGUF file; when unset the catalog finds the model by name")
    ctx: int = Field(4096, ge=256, description="context per slot (tokens); the engine gets ctx x parallel")
    parallel: int = Field(1, ge=1, le=64, description="parallel slots (-np)")
    threads: int | None = Field(None, ge=1, description="-t; default: physical cores")
    threads_batch: int | None = Field(None, ge=1, description="-tb")
    batch: int | None = Field(None, ge=1, description="-b")
    ubatch: int | None = Field(None, ge=1, description="-ub")
    gpu_layers: int | Literal["auto", "all"] | None = Field(None, description="-ngl")
    tensor_split: list[float] | None = Field(None, description="-ts proportions, one per GPU")
    split_mode: Literal["none", "layer", "row", "tensor"] | None = Field(None, description="-sm")
    main_gpu: int | None = Field(None, ge=0, description="-mg")
    flash_attn: Literal["on", "off", "auto"] | None = Field(None, description="-fa")
    cache_type_k: KvCacheType | None = Field(None, description="-ctk")
    cache_type_v: KvCacheType | None = Field(None, description="-ctv")
    repack: bool | None = Field(
        None, description="weight repacking (--repack/--no-repack); None: off on CPUs that advertise AMX"
    )
    embeddings: bool = Field(True, description="serve /v1/embeddings from the same engine (--embeddings)")
    pooling: Literal["none", "mean", "cls", "last", "rank"] | None = Field(
        "mean", description="--pooling for embeddings; mean works for chat models without pooling metadata"
    )
    reasoning: Literal["tags", "off"] = Field(
        "tags", description="tags: an answer that starts with <think> has that part split out as reasoning"
    )
    thinking: bool | None = Field(
        None, description="the model can think (Ollama think); None: detected from the chat template"
    )
    tool_calls: Literal["prompt", "native"] = Field(
        "prompt", description="prompt: tools described in the prompt + JSON schema (any model); native: the engine's"
    )
    extra_args: list[str] = Field(default_factory=list, description="appended to the llama-server argv")
    aliases: list[str] = Field(default_factory=list)
    ttl: float | None = Field(
        None, description="idle seconds before unload; None = scheduler.default_ttl, negative = never, 0 = at once"
    )
    priority: int = Field(0, description="higher survives eviction longer")
    pinned: bool = False

    @field_validator("tensor_split")
    @classmethod
    def _valid_split(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if any(v < 0 for v in value) or not any(v > 0 for v in value):
            raise ValueError("tensor_split needs non-negative ratios, not all zero")
        return value

    @field_validator("extra_args")
    @classmethod
    def _no_reserved_args(cls, value: list[str]) -> list[str]:
        reserved = {"--port", "--host", "-m", "--model"}
        clash = reserved.intersection(value)
        if clash:
            raise ValueError(f"extra_args may not set {sorted(clash)}: llmhost owns them")
        return value


class EngineSettings(Strict):
    llama_server: Path | None = Field(None, description="llama-server binary; default: the one setup built")
    startup_timeout: float = Field(180.0, gt=0, description="seconds to wait for /health")
    stop_grace: float = Field(10.0, gt=0, description="seconds between SIGTERM and SIGKILL")
    restart_backoff: list[float] = Field(default_factory=lambda: [1.0, 2.0, 5.0, 10.0, 30.0])
    max_restarts: int = Field(5, ge=0, description="crash restarts in a row before giving up")
    log_lines: int = Field(500, ge=10, description="stderr lines kept per engine")
    request_timeout: float = Field(600.0, gt=0, description="seconds an engine may take for one request")


class SchedulerSettings(Strict):
    max_loaded: int | None = Field(None, ge=1, description="most engines loaded at once; None = memory decides")
    host_memory_mib: float | None = Field(
        None, gt=0, description="memory budget for CPU engines; default: total RAM minus reserve_mib"
    )
    gpu_memory_mib: float | None = Field(None, gt=0, description="budget per GPU; default: its total minus reserve")
    reserve_mib: float = Field(1024.0, ge=0, description="kept free on every device")
    queue_size: int = Field(32, ge=0, description="requests that may wait per model once every slot is busy")
    queue_timeout: float = Field(120.0, gt=0, description="seconds a request may wait for a slot before 503")
    default_ttl: float | None = Field(
        None, description="idle seconds before a model without ttl unloads; None or negative = never"
    )


class ApiPrice(Strict):
    """A hosted API's list price per million tokens, to compare with the cost of serving here."""

    input_per_m: float = Field(ge=0)
    output_per_m: float = Field(ge=0)


class AdvisorSettings(Strict):
    electricity_price_per_kwh: float | None = Field(
        None, ge=0, description="your electricity price; with GPU power and measured tok/s it gives cost per M tokens"
    )
    currency: str = Field("USD", min_length=1, max_length=8)
    api_prices: dict[str, ApiPrice] = Field(
        default_factory=dict, description="hosted APIs to compare against, price per million tokens"
    )


class KeySettings(Strict):
    """One API key, stored as its digest (``llmhost keys add NAME`` makes a key and prints this entry)."""

    name: str = Field(min_length=1, max_length=64)
    key_sha256: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$", description="sha256:<hex> of the key")
    key_env: str | None = Field(None, description="environment variable holding the key itself")
    models: list[str] = Field(default_factory=list, description="allowed model names or globs; empty = all")
    rpm: int | None = Field(None, ge=1, description="requests per minute")
    tpm: int | None = Field(None, ge=1, description="tokens (prompt + completion) per minute")
    max_parallel: int | None = Field(None, ge=1, description="requests in flight at once")
    admin: bool = Field(False, description="may use /admin, the dashboard's actions, pull, copy and delete")

    @model_validator(mode="after")
    def _one_secret(self) -> KeySettings:
        if (self.key_sha256 is None) == (self.key_env is None):
            raise ValueError(f"key {self.name}: set exactly one of key_sha256 and key_env")
        return self

    def digest(self) -> str:
        if self.key_sha256 is not None:
            return self.key_sha256
        value = os.environ.get(self.key_env or "")
        if not value:
            raise ValueError(f"key {self.name}: the environment variable {self.key_env} is not set")
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


class AuthSettings(Strict):
    keys: list[KeySettings] = Field(default_factory=list)
    key_file: Path | None = Field(None, description="a YAML list of keys shaped like auth.keys, read at start")
    public_metrics: bool = Field(True, description="/metrics without a key (for Prometheus on a trusted network)")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS; empty = CORS off")


ProviderKind = Literal["openai", "vllm", "ollama", "tgi", "llamacpp"]


class ProviderSettings(Strict):
    """A remote server whose models llmhost lists and serves next to its own (LiteLLM's deployments,
    llama-swap's peers). Inference goes through the upstream's OpenAI-compatible routes, which all five kinds
    offer; the kind decides how its models are discovered."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    kind: ProviderKind = "openai"
    base_url: str = Field(description="e.g. http://spark:8000 (without /v1)")
    api_key: str | None = Field(None, description="sent as a bearer token; prefer api_key_env or api_key_file")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    api_key_file: Path | None = Field(None, description="file holding the API key")
    models: list[str] | None = Field(None, description="a fixed model list; None: discover it from the upstream")
    prefix: str = Field("", description="put before every upstream model name, e.g. 'spark/'")
    aliases: dict[str, str] = Field(default_factory=dict, description="upstream model name -> name served")
    weight: float = Field(1.0, gt=0, description="share of requests among targets of the same model")
    priority: int = Field(0, description="higher is tried first among healthy targets")
    connect_timeout: float = Field(5.0, gt=0)
    request_timeout: float = Field(600.0, gt=0)
    health_interval: float = Field(15.0, gt=0, description="seconds between probes of a healthy upstream")
    max_connections: int = Field(64, ge=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/").removesuffix("/v1")

    def key(self) -> str | None:
        """The API key from wherever it is configured (read when needed; never logged)."""
        if self.api_key_file is not None:
            return self.api_key_file.expanduser().read_text(encoding="utf-8").strip()
        if self.api_key_env is not None:
            return os.environ.get(self.api_key_env)
        return self.api_key


class Settings(BaseSettings):
    """Effective configuration. Precedence: CLI flags > LLMHOST_* env > YAML file > defaults."""

    model_config = SettingsConfigDict(
        env_prefix="LLMHOST_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir)
    cache_dir: Path = Field(default_factory=default_cache_dir)
    model_dirs: list[Path] = Field(default_factory=list, description="extra directories of .gguf files")
    ollama_models: Path | None = Field(None, description="Ollama store; default OLLAMA_MODELS or ~/.ollama/models")
    hf_cache: Path | None = Field(None, description="Hugging Face hub cache; default HF_HUB_CACHE or ~/.cache")
    scan_hf_cache: bool = True
    scan_ollama: bool = True
    ollama_registry: str = Field(
        "https://registry.ollama.ai", description="where /api/pull fetches models named without a host"
    )
    ollama_store_owned: bool = Field(
        False, description="llmhost may delete models from the Ollama store (/api/delete); off: it only reads it"
    )
    unknown_model: Literal["error", "default"] = Field(
        "error", description="a request naming an unknown model: 404, or route it to default_model"
    )
    default_model: str | None = Field(None, description="default: the first model of the catalog")
    max_request_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    gpu_backend: Literal["nvml", "none", "fake"] = Field(
        "nvml", description="nvml: NVIDIA GPUs (none found is fine); fake: the GPUs described by fake_gpus"
    )
    fake_gpus: str | list[FakeGpu] | None = Field(
        None, description=f"with gpu_backend: fake, a rig ({', '.join(RIGS)}) or a list of GPUs; default 2x24gb"
    )
    advisor: AdvisorSettings = Field(default_factory=AdvisorSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    defaults: ModelProfile = Field(default_factory=ModelProfile, description="profile for models not listed")
    models: dict[str, ModelProfile] = Field(default_factory=dict)
    providers: list[ProviderSettings] = Field(default_factory=list, description="remote upstreams")
    auth: AuthSettings = Field(default_factory=AuthSettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = Field("console", description="json: one JSON object per line")
    log_file: Path | None = Field(None, description="also log to this file, rotated at 20 MB (5 kept)")
    shutdown_grace: float = Field(10.0, gt=0, description="seconds in-flight requests get to finish at shutdown")

    @property
    def models_dir(self) -> Path:
        """Where setup puts the default model; always scanned."""
        return self.data_dir / "models"

    @property
    def pulled_dir(self) -> Path:
        """llmhost's own Ollama-layout store: models fetched by /api/pull."""
        return self.data_dir / "ollama"

    @property
    def engines_dir(self) -> Path:
        return self.data_dir / "engine"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @model_validator(mode="after")
    def _check_models(self) -> Settings:
        for name, profile in self.models.items():
            if not name or name.startswith("/") or ".." in name.split("/"):
                raise ValueError(f"models: {name!r} is not a valid model name")
            for alias in profile.aliases:
                if alias in self.models and alias != name:
                    raise ValueError(f"models.{name}.aliases: {alias!r} is already a model name")
        if isinstance(self.fake_gpus, str) and self.fake_gpus not in RIGS:
            raise ValueError(f"fake_gpus: {self.fake_gpus!r} is not a rig; known: {', '.join(RIGS)}")
        names = [provider.name for provider in self.providers]
        if len(names) != len(set(names)):
            raise ValueError(f"providers: names must be unique, got {names}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlSource(settings_cls))


class ConfigError(Exception):
    """A configuration problem, worded as one line that names the key."""


class YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file chosen by ``load_settings`` (or LLMHOST_CONFIG / the default path)."""

    path: Path | None = None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = YamlSource.path or config_path_from_env()
        if path is None or not path.exists():
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        return data


def config_path_from_env() -> Path:
    explicit = os.environ.get("LLMHOST_CONFIG")
    return Path(explicit) if explicit else default_config_path()


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the effective settings; raise ConfigError with one line per bad key."""
    if config_file is not None and not config_file.exists():
        raise ConfigError(f"config file {config_file} does not exist")
    YamlSource.path = config_file
    cli = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**cli)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc
    finally:
        YamlSource.path = None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "config"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"config error: {key}: {message}")
    return "\n".join(lines)
