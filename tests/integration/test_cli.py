"""The command line as a user runs it: a subprocess with a config file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import DEFAULT_MODEL, MAX_REQUEST_BYTES, run_cli, write_config

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"bogus_key": 1}, "bogus_key"),
        ({"engine": {"llama_srv": "/x"}}, "engine.llama_srv"),
        ({"models": {"m:1b": {"paralel": 2}}}, "models.m:1b.paralel"),
        ({"port": "eleven"}, "port"),
    ],
)
def test_config_show_bad_key_exits_2_with_one_line(tmp_path: Path, config: dict[str, object], key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run_cli("config", "show", "--config", str(path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert key in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_config_show_prints_effective_yaml(tmp_path: Path) -> None:
    path = write_config(tmp_path, tmp_path / "data")
    result = run_cli("config", "show", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# config file: ")
    shown = yaml.safe_load(result.stdout)
    assert shown["max_request_bytes"] == MAX_REQUEST_BYTES
    assert shown["data_dir"] == str(tmp_path / "data")
    assert shown["models"][DEFAULT_MODEL]["parallel"] == 2


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run_cli("config", "show", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "absent.yaml" in result.stderr


def test_models_lists_the_default_model(tmp_path: Path) -> None:
    path = write_config(tmp_path, tmp_path / "data")
    result = run_cli("models", "--config", str(path))
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if DEFAULT_MODEL in line]
    assert rows, f"{DEFAULT_MODEL} is not in the table (whole, on one line):\n{result.stdout}"
    row = rows[0]
    assert "llama" in row  # architecture from the GGUF metadata
    assert "2048" in row  # the configured per-slot context
    assert "directory" in row
