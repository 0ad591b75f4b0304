"""Model ids: validation of names that arrive over the wire, and names for files found on disk."""

from __future__ import annotations

import re
from pathlib import Path

from llmhost.types import InvalidRequest

MAX_NAME_LENGTH = 256

_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})$", re.IGNORECASE)
_QUANT = r"(?:ud-)?(?:i?q\d+(?:_[a-z0-9]+)*|tq\d_\d|mxfp4(?:_moe)?|bf16|f16|f32|f64)"
_TAGGED = re.compile(rf"^(?P<base>.+?)[.-](?P<tag>{_QUANT})$")


def _invalid(name: str, reason: str) -> InvalidRequest:
    return InvalidRequest(f"invalid model name {name!r}: {reason}", param="model")


def validate_model_name(name: str) -> str:
    """Return the stripped name, or raise InvalidRequest if it could be read as a path or is malformed."""
    stripped = name.strip()
    if not stripped:
        raise _invalid(name, "empty")
    if len(stripped) > MAX_NAME_LENGTH:
        raise _invalid(stripped[:40] + "...", f"longer than {MAX_NAME_LENGTH} characters")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in stripped):
        raise _invalid(stripped, "control characters")
    if "\\" in stripped:
        raise _invalid(stripped, "backslash")
    if stripped.startswith(("/", "~")) or _DRIVE.match(stripped):
        raise _invalid(stripped, "absolute path")
    segments = re.split(r"[/:]", stripped)
    if any(segment in ("", ".", "..") for segment in segments):
        raise _invalid(stripped, "empty, '.' or '..' path segment")
    return stripped


def gguf_stem(path: Path) -> str:
    """The file name without ``.gguf`` and without a ``-00001-of-00003`` shard suffix."""
    stem = path.name[: -len(".gguf")] if path.name.lower().endswith(".gguf") else path.stem
    return _SHARD.sub("", stem)


def split_quant(stem: str) -> tuple[str, str | None]:
    """``"smollm2-135m.q4_1"`` -> ``("smollm2-135m", "q4_1")``; no quant-like suffix -> ``(stem, None)``."""
    lowered = stem.lower()
    match = _TAGGED.match(lowered)
    if match is None:
        return lowered, None
    return match["base"], match["tag"]


def display_name_for_file(path: Path) -> str:
    """``SmolLM2-135M-Instruct.Q4_1.gguf`` -> ``smollm2-135m-instruct:q4_1`` (tag ``latest`` when none)."""
    base, tag = split_quant(gguf_stem(path))
    return f"{base}:{tag or 'latest'}"


def is_weights_file(path: Path) -> bool:
    """A loadable GGUF: not a projector (``mmproj``) and not a shard other than the first."""
    name = path.name.lower()
    if not name.endswith(".gguf") or "mmproj" in name:
        return False
    shard = _SHARD.search(name[: -len(".gguf")])
    return shard is None or int(shard[1]) == 1


def canonical_name(name: str) -> str:
    """Ollama-style normal form used for fallback lookups: no default registry/namespace, a tag, lowercase."""
    lowered = name.lower()
    lowered = lowered.removeprefix("registry.ollama.ai/").removeprefix("library/")
    if ":" not in lowered.rsplit("/", 1)[-1]:
        lowered += ":latest"
    return lowered
