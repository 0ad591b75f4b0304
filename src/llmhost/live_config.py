"""Live configuration: validate a new config, apply what changed without a restart, roll back on failure,
and keep every change (who, when, diff, result) so it can be undone.

A change is validated whole first (the same loader as at startup): a wrong one changes nothing. Applying
swaps the live sections into the running settings, then restarts, one at a time, only the engines whose
profile changed: each engine finishes its in-flight requests first (new ones wait, bounded by the queue
timeout) and comes back with the new profile. If a new engine does not start, the previous configuration
comes back whole, the old engine is started again, and the failure is reported and recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import itertools
import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import yaml

from llmhost.auth import KeyRing
from llmhost.config import ConfigError, Settings, load_settings
from llmhost.types import InvalidRequest, LlmhostError

if TYPE_CHECKING:
    from llmhost.service import Service

log = structlog.get_logger(__name__)

LIVE_FIELDS = (
    "models",
    "defaults",
    "scheduler",
    "unknown_model",
    "default_model",
    "max_request_bytes",
    "auth",
    "advisor",
)
RESTART_FIELDS = ("host", "port", "data_dir", "cache_dir", "engine", "gpu_backend", "fake_gpus", "providers")
WATCH_INTERVAL = 1.0


class ConfigRejected(InvalidRequest):
    """The new configuration is invalid or needs a restart; nothing was changed."""


class ApplyFailed(LlmhostError):
    """An engine did not start with the new configuration; the previous one is back."""

    status = 409
    kind = "invalid_request"


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    time: float
    who: str
    source: str  # api | file | signal | rollback
    result: str  # applied | rejected | rolled_back
    restarted: list[str]
    error: str | None
    diff: str
    before: str  # the config document before (YAML)
    after: str


class LiveConfig:
    def __init__(self, service: Service, path: Path | None, overrides: dict[str, Any]) -> None:
        self.service = service
        self.path = path  # the YAML file, when the service was started from one
        self.overrides = overrides  # CLI flags: they keep precedence over the file, as at startup
        self.history_path = service.settings.data_dir / "config-history.jsonl"
        self._lock = asyncio.Lock()
        self._document = self._read_document()  # the document in force: the baseline for every change
        self._refused: str | None = None
        self._watcher: asyncio.Task[None] | None = None

    # reading ----------------------------------------------------------------------------------------

    def document(self) -> str:
        """The config file's text (what a user edits), or the effective settings when there is no file."""
        return self._document or yaml.safe_dump(self.service.settings.model_dump(mode="json"), sort_keys=False)

    def validate(self, document: str) -> Settings:
        """The settings ``document`` would give, or ConfigRejected with every problem. A setting that only a
        restart can change is refused when the document changes it (compared with the current document, both
        loaded without the command-line flags, so an edit hidden by a flag still counts)."""
        settings = self._load(document, self.overrides)
        if self._document is not None:
            edited, current = self._load(document, {}), self._load(self._document, {})
        else:
            edited, current = settings, self.service.settings
        frozen = [name for name in RESTART_FIELDS if getattr(edited, name) != getattr(current, name)]
        if frozen:
            raise ConfigRejected(f"these settings need a restart of llmhost: {', '.join(frozen)}")
        try:
            KeyRing(settings.auth)  # the key file and key_env variables are read now, not halfway through an apply
        except ValueError as exc:
            raise ConfigRejected(f"auth: {exc}") from None
        return settings

    def _load(self, document: str, overrides: dict[str, Any]) -> Settings:
        try:
            data = yaml.safe_load(document) if document.strip() else {}
        except yaml.YAMLError as exc:
            raise ConfigRejected(f"not valid YAML: {exc}".replace("\n", " ")) from None
        if not isinstance(data, dict):
            raise ConfigRejected("the configuration must be a mapping of keys")
        with tempfile.TemporaryDirectory() as directory:
            candidate = Path(directory) / "config.yaml"
            candidate.write_text(document, encoding="utf-8")
            try:
                return load_settings(candidate, **overrides)
            except (ConfigError, ValueError) as exc:
                raise ConfigRejected(str(exc).replace("\n", "; ")) from None

    def history(self) -> list[dict[str, Any]]:
        if not self.history_path.exists():
            return []
        return [json.loads(line) for line in self.history_path.read_text(encoding="utf-8").splitlines() if line]

    # applying ---------------------------------------------------------------------------------------

    async def apply(self, document: str, who: str, source: str = "api") -> Change:
        async with self._lock:
            before = self.document()
            try:
                new = await asyncio.to_thread(self.validate, document)
            except ConfigRejected as exc:
                await self._record(who, source, "rejected", [], exc.message, before, document)
                raise
            previous = self.service.settings.model_copy(deep=True)
            restarted: list[str] = []
            try:
                restarted = await self._switch(new, previous)
            except LlmhostError as exc:
                await self._switch_back(previous)
                change = await self._record(who, source, "rolled_back", restarted, exc.message, before, document)
                raise ApplyFailed(f"change {change.id} rolled back: {exc.message}") from None
            await self._store_document(document)
            return await self._record(who, source, "applied", restarted, None, before, document)

    async def rollback(self, change_id: int, who: str) -> Change:
        change = next((c for c in self.history() if c["id"] == change_id), None)
        if change is None:
            raise InvalidRequest(f"no configuration change {change_id}")
        return await self.apply(change["before"], who, source="rollback")

    async def _switch(self, new: Settings, previous: Settings) -> list[str]:
        """Take the live sections of ``new``; restart the engines whose profile changed, one at a time."""
        service = self.service
        self._take(new)
        await asyncio.to_thread(service.catalog.scan)
        restarted = []
        for name, slot in list(service.scheduler.models.items()):
            if slot.engine is None:
                continue
            entry = service.catalog.get(name)
            profile = service.profile(entry)
            if profile == slot.profile:
                continue
            await service.scheduler.unload(name)  # in-flight requests finish first; new ones wait
            restarted.append(name)
            await service.scheduler.load(entry, profile)
        return restarted

    async def _switch_back(self, previous: Settings) -> None:
        self._take(previous)
        with contextlib.suppress(LlmhostError):
            await self._switch(previous, previous)

    def _take(self, new: Settings) -> None:
        settings = self.service.settings
        for name in LIVE_FIELDS:
            setattr(settings, name, getattr(new, name))
        self.service.keys.reload(settings.auth)

    async def _store_document(self, document: str) -> None:
        self._document = document
        if self.path is not None and document != await asyncio.to_thread(self._read_file):
            await asyncio.to_thread(self.path.write_text, document, "utf-8")

    async def _record(
        self, who: str, source: str, result: str, restarted: list[str], error: str | None, before: str, after: str
    ) -> Change:
        history = await asyncio.to_thread(self.history)
        diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "before", "after"))
        change = Change(len(history) + 1, time.time(), who, source, result, restarted, error, diff, before, after)
        line = json.dumps(asdict(change)) + "\n"
        await asyncio.to_thread(_append, self.history_path, line)
        log.info("configuration change", id=change.id, who=who, source=source, result=result, restarted=restarted)
        return change

    # the file ---------------------------------------------------------------------------------------

    def _read_document(self) -> str | None:
        return self._read_file() if self.path is not None else None

    def _read_file(self) -> str:
        assert self.path is not None
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    async def reload(self, source: str = "signal") -> Change | None:
        """Apply the config file as it is now (SIGHUP, or the watcher saw it change)."""
        if self.path is None:
            return None
        document = await asyncio.to_thread(self._read_file)
        if document == self._document or document == self._refused or not document.strip():
            return None  # unchanged, already refused, or caught half-written (empty)
        try:
            return await self.apply(document, who="file", source=source)
        except LlmhostError as exc:
            self._refused = document  # reported and recorded once, not again at every look
            log.warning("configuration file not applied", error=exc.message)
            return None

    def start_watching(self) -> None:
        if self.path is not None:
            self._watcher = asyncio.create_task(self._watch(), name="config-watch")

    async def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        assert self.path is not None
        fingerprint = await asyncio.to_thread(_fingerprint, self.path)
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            now = await asyncio.to_thread(_fingerprint, self.path)
            if now != fingerprint:
                fingerprint = now
                await self.reload(source="file")


def _fingerprint(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)


SECRET_LINE = re.compile(r"^(\s*[-+ ]?\s*api_key:\s*)(\S.*)$", re.MULTILINE)


def redact(text: str) -> str:
    """Config text with provider API keys hidden, for anything shown over the API."""
    return SECRET_LINE.sub(r"\1<hidden>", text)


def unredact(text: str, current: str) -> str:
    """``text`` (edited from a redacted copy of ``current``) with each ``<hidden>`` key put back: the n-th key line
    takes the n-th key of the document in force, so a round trip through the API changes no secret."""
    secrets = [match.group(2) for match in SECRET_LINE.finditer(current)]
    count = itertools.count()

    def restore(match: re.Match[str]) -> str:
        index = next(count)
        if match.group(2).strip() == "<hidden>" and index < len(secrets):
            return match.group(1) + secrets[index]
        return match.group(0)

    return SECRET_LINE.sub(restore, text)


def redact_change(change: dict[str, Any]) -> dict[str, Any]:
    return {key: redact(value) if key in ("diff", "before", "after") else value for key, value in change.items()}
