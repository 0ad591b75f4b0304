"""The model catalog: every GGUF llmhost can serve, by name, from config, directories, Ollama and HF.

When two sources yield the same name the first in ``SOURCES`` order wins. ``scan`` does blocking disk
I/O and GGUF parsing (callers run it in a thread); lookups only read an index that ``scan`` swaps in whole.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from llmhost.config import DEFAULT_MODEL_FILE, ModelProfile, Settings
from llmhost.models.aliases import AliasStore
from llmhost.models.directories import scan_directories
from llmhost.models.gguf_meta import GgufMeta, read_gguf_meta
from llmhost.models.hf_cache import hf_root, scan_hf_cache
from llmhost.models.names import canonical_name, display_name_for_file, validate_model_name
from llmhost.models.ollama_store import OllamaModel, delete_model, ollama_root, scan_ollama
from llmhost.types import InvalidRequest, ModelNotFound, PermissionDenied

log = logging.getLogger(__name__)

Source = Literal["config", "directory", "ollama", "huggingface"]
SOURCES: tuple[Source, ...] = ("config", "directory", "ollama", "huggingface")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str  # canonical id: /v1/models id and Ollama-style name:tag
    path: Path  # the GGUF weights file
    source: Source
    size: int  # bytes; for Ollama the sum of the layers and config, as /api/tags reports it
    modified: float  # unix seconds
    meta: GgufMeta | None  # None when the file could not be read; then ``error`` says why
    aliases: tuple[str, ...] = ()
    error: str | None = None
    template: str | None = None  # Ollama template layer
    params: dict[str, Any] | None = None  # Ollama params layer
    system: str | None = None  # Ollama system layer
    license: str | None = None  # Ollama license layer
    manifest: Path | None = None  # Ollama manifest file
    digest: str | None = None  # Ollama: sha256 of the manifest

    @property
    def tag_digest(self) -> str:
        """What /api/tags and /api/ps call the digest: Ollama's manifest hash, else a hash of the path."""
        return self.digest or hashlib.sha256(str(self.path).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Index:
    entries: list[ModelEntry] = field(default_factory=list)
    by_name: dict[str, ModelEntry] = field(default_factory=dict)
    by_alias: dict[str, ModelEntry] = field(default_factory=dict)
    by_canonical: dict[str, ModelEntry] = field(default_factory=dict)


_MetaKey = tuple[str, int, int]


class Catalog:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._index = _Index()
        self._meta_cache: dict[_MetaKey, GgufMeta | str] = {}
        self._scan_lock = threading.Lock()
        self.copies = AliasStore(settings.data_dir / "aliases.json")

    def scan(self) -> list[ModelEntry]:
        """Rediscover every model and replace the current entries; unchanged files are not re-parsed."""
        with self._scan_lock:
            used: set[_MetaKey] = set()
            found = self._attach_copies(self._attach_profiles(_dedupe(self._discover())))
            entries = [self._with_meta(entry, used) for entry in found]
            self._meta_cache = {key: value for key, value in self._meta_cache.items() if key in used}
            self._index = _build_index(entries)
            return list(self._index.entries)

    def entries(self) -> list[ModelEntry]:
        return list(self._index.entries)

    def get(self, name: str) -> ModelEntry:
        """Exact name, then alias, then Ollama-style equivalents (``x`` == ``x:latest`` == ``library/x``)."""
        name = validate_model_name(name)
        index = self._index
        entry = index.by_name.get(name) or index.by_alias.get(name)
        entry = entry or index.by_canonical.get(canonical_name(name))
        if entry is None:
            raise ModelNotFound(name)
        return entry

    def profile(self, entry: ModelEntry) -> ModelProfile:
        models = self._settings.models
        if entry.name in models:
            return models[entry.name]
        for key, profile in models.items():
            if entry.name in profile.aliases or key in entry.aliases:
                return profile
        return self._settings.defaults

    def default_entry(self) -> ModelEntry | None:
        """``default_model`` if it resolves, else the model setup installs, else the first usable entry."""
        if self._settings.default_model:
            try:
                return self.get(self._settings.default_model)
            except (ModelNotFound, InvalidRequest):
                log.warning("default_model %r is not in the catalog", self._settings.default_model)
        entries = sorted(self._index.entries, key=lambda entry: SOURCES.index(entry.source))
        usable = [entry for entry in entries if entry.error is None] or entries
        for entry in usable:
            if entry.path.name == DEFAULT_MODEL_FILE:
                return entry
        return usable[0] if usable else None

    # Copy and delete (Ollama's /api/copy and /api/delete); blocking: call from a thread ----------

    def copy(self, source: str, destination: str) -> None:
        """``destination`` becomes another name of ``source``'s model, kept across restarts."""
        target = self.get(source)
        destination = validate_model_name(destination)
        if destination == target.name:
            return  # a model is already its own name: nothing to record (Ollama answers 200 too)
        if destination in self._index.by_name:
            raise InvalidRequest(f"destination {destination!r} is already a model; delete it first")
        self.copies.add(destination, target.name)
        self.scan()

    def delete(self, name: str) -> str:
        """Remove a copied name, or a model file llmhost owns; says what it removed."""
        name = validate_model_name(name)
        if self.copies.remove(name):
            self.scan()
            return f"name {name}"
        entry = self.get(name)
        if name in entry.aliases or entry.source == "config":
            raise PermissionDenied(f"{name} is defined in the configuration file; remove it there")
        if entry.source == "ollama":
            removed = self._delete_ollama(entry)
        elif entry.path.resolve().is_relative_to(self._settings.models_dir.resolve()):
            entry.path.unlink()
            removed = str(entry.path)
        else:
            raise PermissionDenied(
                f"{entry.path} is outside llmhost's model store ({self._settings.models_dir}); "
                "llmhost does not delete files it does not own"
            )
        self.copies.remove_targets({entry.name})
        self.scan()
        return removed

    def _delete_ollama(self, entry: ModelEntry) -> str:
        own = self._settings.pulled_dir
        if entry.manifest is not None and entry.manifest.resolve().is_relative_to(own.resolve()):
            root = own  # pulled by llmhost: always its own
        elif self._settings.ollama_store_owned and entry.manifest is not None:
            root = ollama_root(self._settings.ollama_models)
        else:
            raise PermissionDenied(
                f"{entry.name} belongs to the Ollama store; set ollama_store_owned: true to let llmhost delete it"
            )
        removed = delete_model(root, entry.manifest)
        return ", ".join(str(path) for path in removed)

    # Discovery ---------------------------------------------------------------------------------

    def _discover(self) -> list[ModelEntry]:
        settings = self._settings
        found = self._from_config()
        found += [_file_entry(display_name_for_file(path), path, "directory") for path in self._directories()]
        found += [_ollama_entry(model) for model in scan_ollama(settings.pulled_dir)]
        if settings.scan_ollama:
            found += [_ollama_entry(model) for model in scan_ollama(ollama_root(settings.ollama_models))]
        if settings.scan_hf_cache:
            hf_models = scan_hf_cache(hf_root(settings.hf_cache))
            found += [_file_entry(model.name, model.path, "huggingface") for model in hf_models]
        return found

    def _directories(self) -> list[Path]:
        return scan_directories([self._settings.models_dir, *self._settings.model_dirs])

    def _from_config(self) -> list[ModelEntry]:
        found = []
        for name, profile in self._settings.models.items():
            if profile.path is not None:
                path = profile.path.expanduser()
                path = path if path.is_absolute() else self._settings.models_dir / path
                found.append(_file_entry(name, path, "config", tuple(profile.aliases)))
        return found

    def _attach_profiles(self, entries: list[ModelEntry]) -> list[ModelEntry]:
        """A configured name without ``path`` lends its aliases (and its own name) to the model it names."""
        attached = list(entries)
        for key, profile in self._settings.models.items():
            if profile.path is not None:
                continue
            position = _find_position(attached, key)
            if position is None:
                log.warning("models.%s: no model of that name was found", key)
                continue
            entry = attached[position]
            extra = ([key] if key != entry.name else []) + list(profile.aliases)
            attached[position] = replace(entry, aliases=_unique([*entry.aliases, *extra]))
        return attached

    def _attach_copies(self, entries: list[ModelEntry]) -> list[ModelEntry]:
        attached = list(entries)
        for alias, target in self.copies.load().items():
            position = _find_position(attached, target)
            if position is None:
                log.warning("copied name %s: its source %s is gone", alias, target)
                continue
            entry = attached[position]
            attached[position] = replace(entry, aliases=_unique([*entry.aliases, alias]))
        return attached

    def _with_meta(self, entry: ModelEntry, used: set[_MetaKey]) -> ModelEntry:
        try:
            stat = entry.path.stat()
        except OSError as exc:
            return replace(entry, error=f"cannot read {entry.path}: {exc.strerror or exc}")
        key = (str(entry.path), stat.st_size, stat.st_mtime_ns)
        used.add(key)
        if key not in self._meta_cache:
            self._meta_cache[key] = _read_meta(entry.path)
        cached = self._meta_cache[key]
        if isinstance(cached, str):
            return replace(entry, error=cached)
        return replace(entry, meta=cached)


def _read_meta(path: Path) -> GgufMeta | str:
    """The metadata, or why it could not be read."""
    try:
        return read_gguf_meta(path)
    except (OSError, ValueError) as exc:
        log.warning("cannot read GGUF metadata of %s: %s", path, exc)
        return str(exc)


def _file_entry(name: str, path: Path, source: Source, aliases: tuple[str, ...] = ()) -> ModelEntry:
    try:
        stat = path.stat()
        size, modified = stat.st_size, stat.st_mtime
    except OSError:
        size, modified = 0, 0.0
    return ModelEntry(name=name, path=path, source=source, size=size, modified=modified, meta=None, aliases=aliases)


def _ollama_entry(model: OllamaModel) -> ModelEntry:
    return ModelEntry(
        name=model.name,
        path=model.path,
        source="ollama",
        size=model.size,
        modified=model.modified,
        meta=None,
        template=model.template,
        params=model.params,
        system=model.system,
        license=model.license,
        manifest=model.manifest,
        digest=model.digest,
    )


def _dedupe(found: Iterable[ModelEntry]) -> list[ModelEntry]:
    """Drop invalid names and every later entry with a name already taken."""
    kept: dict[str, ModelEntry] = {}
    for entry in found:
        try:
            validate_model_name(entry.name)
        except InvalidRequest as exc:
            log.warning("skipping %s: %s", entry.path, exc.message)
            continue
        if entry.name in kept:
            log.debug("%s from %s is shadowed by %s", entry.name, entry.path, kept[entry.name].path)
            continue
        kept[entry.name] = entry
    return list(kept.values())


def _find_position(entries: list[ModelEntry], name: str) -> int | None:
    for position, entry in enumerate(entries):
        if entry.name == name:
            return position
    wanted = canonical_name(name)
    for position, entry in enumerate(entries):
        if canonical_name(entry.name) == wanted:
            return position
    return None


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _build_index(entries: list[ModelEntry]) -> _Index:
    ordered = sorted(entries, key=lambda entry: entry.name)
    aliases = [(alias, entry) for entry in ordered for alias in entry.aliases]
    by_alias: dict[str, ModelEntry] = {}
    by_canonical: dict[str, ModelEntry] = {}
    for alias, entry in aliases:
        by_alias.setdefault(alias, entry)
    # Real names take the fallback forms before aliases do.
    for key, entry in [(entry.name, entry) for entry in ordered] + aliases:
        by_canonical.setdefault(canonical_name(key), entry)
    return _Index(ordered, {entry.name: entry for entry in ordered}, by_alias, by_canonical)
