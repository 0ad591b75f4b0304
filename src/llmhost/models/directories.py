"""Plain directories of ``.gguf`` files (the data dir's ``models/`` and ``model_dirs``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from llmhost.models.names import is_weights_file


def scan_directories(directories: Iterable[Path]) -> list[Path]:
    """Every loadable GGUF below the directories, in a stable order; missing directories are skipped."""
    found: list[Path] = []
    seen: set[Path] = set()
    for directory in directories:
        root = directory.expanduser()
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.gguf")):
            if path not in seen and is_weights_file(path) and path.is_file():
                seen.add(path)
                found.append(path)
    return found
