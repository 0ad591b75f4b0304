"""Names made by ``/api/copy``: a small JSON file in the data dir mapping each new name to its source."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class AliasStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", self.path, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(alias): str(target) for alias, target in data.items() if isinstance(target, str)}

    def add(self, alias: str, target: str) -> None:
        aliases = self.load()
        aliases[alias] = target
        self._save(aliases)

    def remove(self, alias: str) -> bool:
        aliases = self.load()
        if aliases.pop(alias, None) is None:
            return False
        self._save(aliases)
        return True

    def remove_targets(self, targets: set[str]) -> None:
        aliases = self.load()
        kept = {alias: target for alias, target in aliases.items() if target not in targets}
        if kept != aliases:
            self._save(kept)

    def _save(self, aliases: dict[str, str]) -> None:
        """Written whole to a temporary file and renamed, so a crash never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(aliases, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.path)
