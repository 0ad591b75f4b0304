"""The benchmark database (``<data_dir>/bench.db``): one SQLite file (WAL) shared by the benchmark and the tuner.

Each component migrates its own tables: ``schema_versions`` keeps one version per component, and a component's
migrations run once each, in order, inside one ``BEGIN IMMEDIATE`` transaction (safe with two processes).
"""

from __future__ import annotations

from pathlib import Path

from llmhost.database import Database

DB_FILE = "bench.db"


def default_db_path(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from llmhost.config import load_settings

        data_dir = load_settings().data_dir
    return data_dir / DB_FILE


__all__ = ["DB_FILE", "Database", "default_db_path"]
