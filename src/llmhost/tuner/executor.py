"""Executors start an engine with candidate parameters for one trial and stop it afterwards.

The interface (``Executor``) is all a tuning job needs, so engines other than the local llama-server can be
tuned by writing one class:

- ``baseline()``: the values the model runs with today, for every tunable parameter (trial 0 runs with ``{}``).
- ``preflight(params)``: a reason the parameters cannot run here (e.g. over the memory budget), or None.
  Checked before ``start``; a refusal costs no trial.
- ``start(params)``: launch the engine with the baseline overridden by ``params``, wait until it serves, and
  return its ``Endpoint`` (an OpenAI-compatible base URL and the model name to send). Raise ``TrialFailed`` with
  a one-line reason when it cannot start (bad flag, out of memory, crash at load): the trial is recorded as
  failed and the strategy steers away.
- ``crashed()``: after a benchmark, why the engine died during it (None if it is still serving).
- ``describe()``: what was launched (argv, memory report), stored with the trial; a ``pid`` of a local engine
  lets the job record how busy the rest of the machine was during the benchmark (``other_cpu``).
- ``stop()``: stop whatever ``start`` launched; safe to call twice or after a failed start.

A vLLM or SGLang executor would map the same parameter names onto its own flags (or declare its own names in
its search space), run ``docker run`` / a Kubernetes Deployment in ``start``, poll ``/health``, and return the
service URL; ``stop`` removes the container or the Deployment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from llmhost.config import EngineSettings, ModelProfile, Settings
from llmhost.engines import memory
from llmhost.engines.engine import Engine
from llmhost.models.catalog import Catalog, ModelEntry
from llmhost.models.gguf_meta import GgufMeta
from llmhost.tuner.space import TUNABLE
from llmhost.types import EngineUnavailable, ModelNotFound

if TYPE_CHECKING:
    from llmhost.engines.scheduler import Scheduler
    from llmhost.service import Service

TRIAL_STARTUP_TIMEOUT = 120.0
ERROR_LINE = re.compile(r"^\S+\s+E\s+(?P<message>.+)$")  # llama.cpp log lines: "0.00.071.120 E message"
FAILURE_WORDS = ("error", "failed", "out of memory", "insufficient", "abort", "exception")


@dataclass(frozen=True, slots=True)
class Endpoint:
    base_url: str  # OpenAI-compatible root, e.g. http://127.0.0.1:40123
    model: str  # the model name requests carry


class TrialFailed(Exception):
    """The engine could not run these parameters; ``reason`` is one line for the trials table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Executor(Protocol):
    name: str
    model: str

    def baseline(self) -> dict[str, Any]: ...

    def preflight(self, params: Mapping[str, Any]) -> str | None: ...

    async def start(self, params: Mapping[str, Any]) -> Endpoint: ...

    def crashed(self) -> str | None: ...

    def describe(self) -> dict[str, Any]: ...

    async def stop(self) -> None: ...


class LocalLlamaServerExecutor:
    """A llama-server per trial through llmhost's own supervisor (``Engine``): same argv builder, same pid files
    (an engine left by a killed job is reaped at the next service start), no crash restarts."""

    name = "llama-server"

    def __init__(
        self,
        model: str,
        model_path: Path,
        profile: ModelProfile,
        *,
        binary: Path,
        engine_settings: EngineSettings,
        pid_dir: Path,
        meta: GgufMeta | None = None,
        budget: Callable[[], dict[str, float]] | None = None,
        gpu_count: int = 0,
        aliases: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self.model_path = model_path
        self.profile = profile
        self.binary = binary
        self.engine_settings = engine_settings.model_copy(
            update={"max_restarts": 0, "startup_timeout": min(engine_settings.startup_timeout, TRIAL_STARTUP_TIMEOUT)}
        )
        self.pid_dir = pid_dir
        self.meta = meta
        self.budget = budget  # MiB per device a trial may take now (the service's free memory); None: unchecked
        self.gpu_count = gpu_count
        self.aliases = aliases  # the catalog's other names for the model (to find its entry in the config)
        self.engine: Engine | None = None

    @classmethod
    def from_settings(cls, settings: Settings, model: str) -> LocalLlamaServerExecutor:
        """Resolve ``model`` (or ``default``) with the catalog (blocking: scans the model directories) and the
        engine binary."""
        from llmhost.installer import resolve_engine

        catalog = Catalog(settings)
        catalog.scan()
        entry = resolve_model(catalog, model)
        binary = resolve_engine(settings)
        if binary is None:
            raise TrialFailed("no llama-server binary: run `llmhost setup` or set engine.llama_server")
        return cls(
            entry.name,
            entry.path,
            catalog.profile(entry),
            binary=binary,
            engine_settings=settings.engine,
            pid_dir=settings.run_dir,
            meta=entry.meta,
            aliases=tuple(entry.aliases),
        )

    def baseline(self) -> dict[str, Any]:
        return {name: getattr(self.profile, name) for name in TUNABLE}

    def _profile(self, params: Mapping[str, Any]) -> ModelProfile:
        try:
            return ModelProfile.model_validate({**self.profile.model_dump(), **params})
        except ValidationError as exc:
            raise TrialFailed(f"invalid parameters: {exc.errors()[0]['msg']}") from None

    def charges(self, params: Mapping[str, Any]) -> dict[str, float]:
        """The GGUF estimate of a trial's memory, per device."""
        profile = self._profile(params)
        need = memory.estimate(self.meta, self.model_path.stat().st_size, profile).total_mib
        return memory.device_charges(need, profile, self.gpu_count)

    def preflight(self, params: Mapping[str, Any]) -> str | None:
        if self.budget is None:
            return None
        free = self.budget()
        short = [
            f"{device}: needs about {mib:.0f} MiB, {max(free.get(device, 0.0), 0.0):.0f} MiB free beside the "
            "serving engines"
            for device, mib in self.charges(params).items()
            if mib > free.get(device, 0.0)
        ]
        return "; ".join(short) or None

    async def start(self, params: Mapping[str, Any]) -> Endpoint:
        await self.stop()
        return await self._launch(params)

    async def _launch(self, params: Mapping[str, Any]) -> Endpoint:
        self.engine = Engine(
            self.model,
            self.model_path,
            self._profile(params),
            binary=self.binary,
            settings=self.engine_settings,
            pid_dir=self.pid_dir,
        )
        try:
            await self.engine.ensure_ready()
        except EngineUnavailable as exc:
            raise TrialFailed(self._failure(str(exc))) from None
        return Endpoint(f"http://127.0.0.1:{self.engine.port}", self.model)

    def crashed(self) -> str | None:
        engine = self.engine
        if engine is None or engine.process is None or not engine.process.exited.is_set():
            return None
        return self._failure(f"engine {engine.process.describe_exit()}")

    def _failure(self, fallback: str) -> str:
        """The engine's first error line (why it exited), else ``fallback``."""
        process = self.engine.process if self.engine else None
        lines = list(process.lines) if process else []
        exit_note = f" ({process.describe_exit()})" if process and process.returncode is not None else ""
        for line in lines:
            match = ERROR_LINE.match(line)
            if match:
                return f"{match['message'].strip()}{exit_note}"
        for line in lines:
            if any(word in line.lower() for word in FAILURE_WORDS):
                return f"{line.strip()}{exit_note}"
        return fallback

    def describe(self) -> dict[str, Any]:
        engine = self.engine
        if engine is None:
            return {}
        pid = engine.process.pid if engine.process else None
        return {"executor": self.name, "pid": pid, "argv": engine.argv, "memory_mib": engine.memory.total_mib()}

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.stop()


class ServiceExecutor(LocalLlamaServerExecutor):
    """Trials inside the running service: beside its engines, within the scheduler's memory. A trial's estimate
    is reserved with the scheduler while its engine runs, so the scheduler places serving engines around it; its
    port is a free one and its pid file is named by its pid, like any engine's, so nothing collides."""

    def __init__(self, scheduler: Scheduler, owner: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scheduler = scheduler
        self.owner = owner

    def charges(self, params: Mapping[str, Any]) -> dict[str, float]:
        """Per device as the scheduler budgets it (a unified-memory GPU's share is host memory)."""
        return self.scheduler.pooled(super().charges(params))

    @classmethod
    def from_service(cls, service: Service, model: str, owner: str) -> ServiceExecutor:
        entry = resolve_model(service.catalog, model)
        scheduler = service.scheduler
        if scheduler.binary is None:
            raise TrialFailed("no llama-server binary: run `llmhost setup` or set engine.llama_server")
        return cls(
            scheduler,
            owner,
            model=entry.name,
            model_path=entry.path,
            profile=service.profile(entry),
            binary=scheduler.binary,
            engine_settings=service.settings.engine,
            pid_dir=scheduler.pid_dir,
            meta=entry.meta,
            budget=scheduler.available,
            gpu_count=len(scheduler.gpus.memory()),
            aliases=tuple(entry.aliases),
        )

    async def start(self, params: Mapping[str, Any]) -> Endpoint:
        await self.stop()
        self.scheduler.reserve(self.owner, self.charges(params))
        return await self._launch(params)

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            self.scheduler.release(self.owner)


DEFAULT_WORDS = ("default", "default-model")


def resolve_model(catalog: Catalog, name: str) -> ModelEntry:
    """A catalog entry by name or alias; ``default`` (or ``default-model``) is the configured default model."""
    try:
        return catalog.get(name)
    except ModelNotFound:
        default = catalog.default_entry() if name in DEFAULT_WORDS else None
        if default is None:
            raise
        return default
