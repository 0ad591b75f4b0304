"""Named configuration presets: the live sections of a configuration (models, defaults, scheduler...) saved
under a name, to be applied later through the live-configuration path (validated, recorded, reversible).

A preset never holds ``auth``: keys stay in the configuration file. Applying a preset replaces each section it
holds and leaves the others as they are. Presets live in ``<data_dir>/config-presets.json``.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from llmhost.live_config import LIVE_FIELDS
from llmhost.types import InvalidRequest, LlmhostError

PRESET_SECTIONS = tuple(name for name in LIVE_FIELDS if name != "auth")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PresetNotFound(LlmhostError):
    status = 404
    kind = "not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no configuration preset named {name!r}", param="name", code="preset_not_found")


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    created: float
    who: str
    sections: dict[str, Any]  # config section -> its value, as in the YAML document


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidRequest(
            "a preset name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", param="name"
        )
    return name


def document_sections(document: str) -> dict[str, Any]:
    """Every top-level section of a configuration document."""
    try:
        data = yaml.safe_load(document) or {}
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"not valid YAML: {exc}".replace("\n", " "), param="yaml") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the configuration must be a mapping of keys")
    return data


def sections_of(document: str) -> dict[str, Any]:
    """The sections of a configuration document a preset keeps."""
    data = document_sections(document)
    return {name: data[name] for name in PRESET_SECTIONS if name in data}


def checked_sections(sections: object) -> dict[str, Any]:
    if not isinstance(sections, dict) or not sections:
        raise InvalidRequest(f"a preset holds one or more of: {', '.join(PRESET_SECTIONS)}", param="config")
    unknown = sorted(set(sections) - set(PRESET_SECTIONS))
    if unknown:
        raise InvalidRequest(
            f"a preset cannot hold {', '.join(unknown)}; only {', '.join(PRESET_SECTIONS)}", param="config"
        )
    return dict(sections)


def with_preset(document: str, preset: Preset) -> str:
    """``document`` with every section the preset holds replaced by the preset's."""
    data = yaml.safe_load(document) or {}
    data.update(preset.sections)
    return yaml.safe_dump(data, sort_keys=False)


class PresetStore:
    """A small JSON file; every call does disk I/O, so the service calls it from a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def list(self) -> list[Preset]:
        with self._lock:
            return sorted(self._read().values(), key=lambda preset: preset.name)

    def get(self, name: str) -> Preset:
        with self._lock:
            preset = self._read().get(name)
        if preset is None:
            raise PresetNotFound(name)
        return preset

    def save(self, name: str, sections: dict[str, Any], who: str) -> Preset:
        preset = Preset(check_name(name), time.time(), who, checked_sections(sections))
        with self._lock:
            presets = self._read()
            presets[name] = preset
            self._write(presets)
        return preset

    def delete(self, name: str) -> None:
        with self._lock:
            presets = self._read()
            if presets.pop(name, None) is None:
                raise PresetNotFound(name)
            self._write(presets)

    def _read(self) -> dict[str, Preset]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return {item["name"]: Preset(**item) for item in data.get("presets", [])}

    def _write(self, presets: dict[str, Preset]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        body = {"presets": [asdict(preset) for preset in presets.values()]}
        partial.write_text(json.dumps(body, indent=1), encoding="utf-8")
        os.replace(partial, self.path)
