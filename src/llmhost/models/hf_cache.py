"""GGUF files in the Hugging Face hub cache: ``models--<org>--<repo>/snapshots/<rev>/**.gguf``.

Snapshot files are symlinks into the repo's ``blobs/``; a link that resolves outside its repo folder
is ignored.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from llmhost.models.names import gguf_stem, is_weights_file, split_quant

log = logging.getLogger(__name__)

REPO_PREFIX = "models--"


@dataclass(frozen=True, slots=True)
class HfModel:
    name: str
    path: Path  # inside snapshots/; may be a symlink (already checked to stay in the repo folder)


def hf_root(configured: Path | None) -> Path:
    if configured is not None:
        return configured.expanduser()
    if env := os.environ.get("HF_HUB_CACHE"):
        return Path(env).expanduser()
    if home := os.environ.get("HF_HOME"):
        return Path(home).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def scan_hf_cache(root: Path) -> list[HfModel]:
    if not root.is_dir():
        return []
    found: list[HfModel] = []
    for repo_dir in sorted(root.glob(f"{REPO_PREFIX}*")):
        if repo_dir.is_dir():
            found.extend(_scan_repo(repo_dir))
    return found


def repo_id(repo_dir: Path) -> str:
    """``models--org--repo`` -> ``org/repo``."""
    return repo_dir.name.removeprefix(REPO_PREFIX).replace("--", "/", 1)


def _scan_repo(repo_dir: Path) -> list[HfModel]:
    seen: dict[str, HfModel] = {}
    for snapshot in _snapshots_newest_first(repo_dir):
        for model in _scan_snapshot(repo_dir, snapshot):
            seen.setdefault(model.name, model)  # a newer snapshot's file wins
    return list(seen.values())


def _snapshots_newest_first(repo_dir: Path) -> list[Path]:
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return []
    found = [path for path in snapshots.iterdir() if path.is_dir() and not path.is_symlink()]
    return sorted(found, key=lambda path: (path.stat().st_mtime, path.name), reverse=True)


def _scan_snapshot(repo_dir: Path, snapshot: Path) -> list[HfModel]:
    files = [path for path in sorted(snapshot.rglob("*.gguf")) if is_weights_file(path)]
    files = [path for path in files if _stays_inside(repo_dir, path)]
    tags = {path: split_quant(gguf_stem(path))[1] or gguf_stem(path).lower() for path in files}
    counts = Counter(tags.values())
    prefix = f"hf.co/{repo_id(repo_dir)}"
    return [
        HfModel(f"{prefix}:{tag if counts[tag] == 1 else gguf_stem(path).lower()}", path) for path, tag in tags.items()
    ]


def _stays_inside(repo_dir: Path, path: Path) -> bool:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling link or a loop
        return False
    if not target.is_relative_to(repo_dir.resolve()):
        log.warning("ignoring %s: it resolves outside %s", path, repo_dir)
        return False
    return target.is_file()
