"""``/api/pull``: fetch a model from an Ollama registry (the Docker registry v2 protocol Ollama uses) into
llmhost's own Ollama-layout store, with progress, sha256 verification, and no partial file left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

from llmhost.models.ollama_store import DEFAULT_HOST, DEFAULT_NAMESPACE, UnsafeManifest, blob_path
from llmhost.types import InvalidRequest, LlmhostError

MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
CHUNK = 1 << 20
PROGRESS_EVERY = 0.25  # seconds between progress objects for one blob
MAX_MANIFEST_BYTES = 1 << 20


class RegistryError(LlmhostError):
    """The registry could not be reached or answered with an error."""

    status = 502
    kind = "unavailable"


@dataclass(frozen=True, slots=True)
class Reference:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def manifest_parts(self) -> tuple[str, str, str, str]:
        return self.host, self.namespace, self.model, self.tag


def parse_reference(name: str) -> Reference:
    """``[host/][namespace/]model[:tag]`` with Ollama's defaults; ``name`` was validated by the caller."""
    path, tag = name, "latest"
    head, separator, tail = name.rpartition(":")
    if separator and "/" not in tail:
        path, tag = head, tail
    parts = path.split("/")
    if len(parts) > 3 or not all(parts) or any(part in (".", "..") for part in [*parts, tag]):
        raise InvalidRequest(f"invalid model name {name!r}")
    host = parts[0] if len(parts) == 3 else DEFAULT_HOST
    namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
    return Reference(host, namespace, parts[-1], tag)


def registry_url(ref: Reference, default_registry: str) -> str:
    return default_registry.rstrip("/") if ref.host == DEFAULT_HOST else f"https://{ref.host}"


async def pull(ref: Reference, registry: str, store: Path, client: httpx.AsyncClient) -> AsyncIterator[dict[str, Any]]:
    """Progress objects as Ollama sends them; raises RegistryError when the registry fails."""
    base = f"{registry}/v2/{ref.namespace}/{ref.model}"
    yield {"status": "pulling manifest"}
    raw = await _manifest(client, f"{base}/manifests/{ref.tag}")
    manifest = _parse_manifest(raw)
    blobs = store / "blobs"
    await asyncio.to_thread(blobs.mkdir, parents=True, exist_ok=True)
    for layer in _layers(manifest):
        async for progress in _blob(client, f"{base}/blobs/{layer['digest']}", blobs, layer):
            yield progress
    yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    await asyncio.to_thread(_write_manifest, store / "manifests" / Path(*ref.manifest_parts), raw)
    yield {"status": "success"}


async def _manifest(client: httpx.AsyncClient, url: str) -> bytes:
    try:
        response = await client.get(url, headers={"accept": MANIFEST_TYPES})
    except httpx.HTTPError as exc:
        raise RegistryError(f"pull model manifest: cannot reach {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code == 404:
        raise RegistryError("pull model manifest: file does not exist")
    if response.status_code >= 400 or len(response.content) > MAX_MANIFEST_BYTES:
        raise RegistryError(f"pull model manifest: the registry answered {response.status_code}")
    return response.content


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    try:
        manifest = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RegistryError(f"pull model manifest: not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise RegistryError("pull model manifest: no layers")
    return manifest


def _layers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    layers = [layer for layer in manifest["layers"] if isinstance(layer, dict)]
    config = manifest.get("config")
    if isinstance(config, dict):
        layers.append(config)
    for layer in layers:
        digest = layer.get("digest")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise RegistryError(f"pull model manifest: invalid digest {str(digest)[:80]!r}")
        int(digest[7:], 16)  # hex, or ValueError
    return layers


async def _blob(
    client: httpx.AsyncClient, url: str, blobs: Path, layer: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    digest: str = layer["digest"]
    status = f"pulling {digest[7:19]}"
    total = int(layer.get("size") or 0)
    try:
        blob_path(blobs, digest)
        yield {"status": status, "digest": digest, "total": total, "completed": total}
        return  # already here (blob_path found it)
    except UnsafeManifest:
        pass
    final = blobs / f"sha256-{digest[7:]}"
    partial = final.with_suffix(".partial")
    hasher = hashlib.sha256()
    completed, last = 0, 0.0
    handle = await asyncio.to_thread(partial.open, "wb")
    try:
        async with client.stream("GET", url, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise RegistryError(f"pull {digest[7:19]}: the registry answered {response.status_code}")
            async for chunk in response.aiter_bytes(CHUNK):
                await asyncio.to_thread(_write, handle, hasher, chunk)
                completed += len(chunk)
                if time.monotonic() - last >= PROGRESS_EVERY:
                    last = time.monotonic()
                    yield {"status": status, "digest": digest, "total": total, "completed": completed}
        await asyncio.to_thread(handle.close)
        if hasher.hexdigest() != digest[7:]:
            raise RegistryError(f"digest mismatch for {digest}: got sha256:{hasher.hexdigest()}")
        await asyncio.to_thread(os.replace, partial, final)
    except httpx.HTTPError as exc:
        raise RegistryError(f"pull {digest[7:19]}: {type(exc).__name__}: {exc}") from exc
    finally:
        handle.close()
        partial.unlink(missing_ok=True)
    yield {"status": status, "digest": digest, "total": total or completed, "completed": completed}


def _write(handle: IO[bytes], hasher: Any, chunk: bytes) -> None:
    hasher.update(chunk)
    handle.write(chunk)


def _write_manifest(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(raw)
    os.replace(temporary, path)
