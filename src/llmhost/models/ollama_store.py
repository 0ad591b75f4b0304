"""Models pulled by Ollama: ``manifests/<host>/<namespace>/<model>/<tag>`` pointing into ``blobs/``.

Manifests are untrusted input: a blob path is only ever built from a digest that matches
``sha256[:-]<64 hex>``, so no manifest can point outside the blobs directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
TEXT_MEDIA_TYPES = {
    "application/vnd.ollama.image.template": "template",
    "application/vnd.ollama.image.prompt": "template",  # the pre-template name of the same layer
    "application/vnd.ollama.image.system": "system",
    "application/vnd.ollama.image.license": "license",
}
PARAMS_MEDIA_TYPE = "application/vnd.ollama.image.params"
MAX_MANIFEST_BYTES = 1 << 20
MAX_TEXT_LAYER_BYTES = 1 << 20
_DIGEST = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")


class UnsafeManifest(ValueError):
    """The manifest is malformed or names a blob it should not; the model is skipped."""


@dataclass(frozen=True, slots=True)
class OllamaModel:
    name: str
    path: Path  # the GGUF blob
    size: int  # layers + config, as ``ollama list`` shows it
    modified: float  # the manifest's mtime, as Ollama reports it
    template: str | None = None
    params: dict[str, Any] | None = None
    system: str | None = None
    license: str | None = None
    manifest: Path | None = None
    digest: str | None = None  # sha256 of the manifest file, as /api/tags shows it


def ollama_root(configured: Path | None) -> Path:
    if configured is not None:
        return configured.expanduser()
    env = os.environ.get("OLLAMA_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".ollama" / "models"


def scan_ollama(root: Path) -> list[OllamaModel]:
    manifests = root / "manifests"
    if not manifests.is_dir():
        return []
    found = []
    for manifest in sorted(manifests.glob("*/*/*/*")):
        parts = manifest.relative_to(manifests).parts
        if any(part.startswith(".") for part in parts) or not manifest.is_file():
            continue
        try:
            found.append(_read_model(root / "blobs", manifest, _name_for(*parts)))
        except (OSError, UnsafeManifest) as exc:
            log.warning("skipping Ollama manifest %s: %s", manifest, exc)
    return found


def _name_for(host: str, namespace: str, model: str, tag: str) -> str:
    if host == DEFAULT_HOST and namespace == DEFAULT_NAMESPACE:
        return f"{model}:{tag}"
    if host == DEFAULT_HOST:
        return f"{namespace}/{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def blob_path(blobs: Path, digest: object) -> Path:
    """The blob file for ``sha256:<hex>``; raises UnsafeManifest for anything else or a missing blob."""
    match = _DIGEST.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise UnsafeManifest(f"invalid digest {str(digest)[:100]!r}")
    for separator in ("-", ":"):
        candidate = blobs / f"sha256{separator}{match[1]}"
        if candidate.is_file():
            return candidate
    raise UnsafeManifest(f"missing blob for {digest}")


def _load_manifest(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise UnsafeManifest("manifest too large")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnsafeManifest(f"not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        raise UnsafeManifest("no layers")
    layers = data["layers"]
    if not all(isinstance(layer, dict) for layer in layers):
        raise UnsafeManifest("malformed layer")
    return data


def _size_of(item: Any) -> int:
    size = item.get("size") if isinstance(item, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0


def _read_model(blobs: Path, manifest: Path, name: str) -> OllamaModel:
    data = _load_manifest(manifest)
    layers: list[dict[str, Any]] = data["layers"]
    # Every digest is checked up front, so one bad layer rejects the whole manifest.
    paths = [blob_path(blobs, layer.get("digest")) for layer in layers]
    models = [path for path, layer in zip(paths, layers, strict=True) if layer.get("mediaType") == MODEL_MEDIA_TYPE]
    if not models:
        raise UnsafeManifest("no model layer")
    texts: dict[str, str | None] = {"template": None, "system": None, "license": None}
    params = None
    for path, layer in zip(paths, layers, strict=True):
        kind = layer.get("mediaType")
        if kind in TEXT_MEDIA_TYPES:
            texts[TEXT_MEDIA_TYPES[kind]] = _read_text(path)
        elif kind == PARAMS_MEDIA_TYPE:
            params = _read_params(path)
    return OllamaModel(
        name=name,
        path=models[0],
        size=sum(_size_of(layer) for layer in layers) + _size_of(data.get("config")),
        modified=manifest.stat().st_mtime,
        template=texts["template"],
        params=params,
        system=texts["system"],
        license=texts["license"],
        manifest=manifest,
        digest=hashlib.sha256(manifest.read_bytes()).hexdigest(),
    )


def delete_model(root: Path, manifest: Path) -> list[Path]:
    """Remove a manifest, then every blob of it that no other manifest uses; returns the files removed."""
    manifests = root / "manifests"
    if not manifest.resolve().is_relative_to(manifests.resolve()):
        raise UnsafeManifest(f"{manifest} is not a manifest of {root}")
    blobs = root / "blobs"
    own = _blob_files(blobs, manifest)
    manifest.unlink()
    removed = [manifest]
    still_used: set[Path] = set()
    for other in manifests.glob("*/*/*/*"):
        if other.is_file():
            still_used |= _blob_files(blobs, other)
    for blob in sorted(own - still_used):
        blob.unlink(missing_ok=True)
        removed.append(blob)
    return removed


def _blob_files(blobs: Path, manifest: Path) -> set[Path]:
    try:
        data = _load_manifest(manifest)
    except (OSError, UnsafeManifest):
        return set()
    digests = [layer.get("digest") for layer in data["layers"]]
    config = data.get("config")
    if isinstance(config, dict):
        digests.append(config.get("digest"))
    found = set()
    for digest in digests:
        try:
            found.add(blob_path(blobs, digest))
        except UnsafeManifest:
            continue
    return found


def _read_text(path: Path) -> str | None:
    with path.open("rb") as handle:
        raw = handle.read(MAX_TEXT_LAYER_BYTES + 1)
    if len(raw) > MAX_TEXT_LAYER_BYTES:
        log.warning("ignoring oversized Ollama layer %s", path)
        return None
    return raw.decode("utf-8", errors="replace")


def _read_params(path: Path) -> dict[str, Any] | None:
    text = _read_text(path)
    try:
        params = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        log.warning("ignoring Ollama params layer %s: not JSON", path)
        return None
    return params if isinstance(params, dict) else None
