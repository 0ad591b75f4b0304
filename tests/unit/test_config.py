"""Configuration loading (config.py): YAML < LLMHOST_* env < init kwargs, strict keys, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmhost.config import DEFAULT_PORT, ConfigError, Settings, YamlSource, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.upper().startswith("LLMHOST_"):
            monkeypatch.delenv(key)
    # never read the developer's real ~/.config/llmhost/config.yaml
    monkeypatch.setenv("LLMHOST_CONFIG", str(tmp_path / "no-such-config.yaml"))


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | None, **overrides: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, **overrides)
    return str(info.value)


def test_defaults_without_any_file() -> None:
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.port == DEFAULT_PORT
    assert settings.host == "127.0.0.1"
    assert settings.models == {}
    assert settings.engine.startup_timeout == 180.0


def test_empty_yaml_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")).port == DEFAULT_PORT
    assert load_settings(write(tmp_path, "# only a comment\n", "c2.yaml")).port == DEFAULT_PORT


def test_yaml_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "port: 1234\n"
        "engine:\n  startup_timeout: 9\n"
        "models:\n"
        "  org/m:7b:\n    ctx: 8192\n    parallel: 2\n    tensor_split: [3, 1]\n    aliases: [m]\n",
    )
    settings = load_settings(path)
    assert settings.port == 1234
    assert settings.engine.startup_timeout == 9.0
    profile = settings.models["org/m:7b"]
    assert (profile.ctx, profile.parallel, profile.tensor_split, profile.aliases) == (8192, 2, [3.0, 1.0], ["m"])


def test_precedence_yaml_env_kwargs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "port: 1234\nhost: 0.0.0.0\n")
    assert load_settings(path).port == 1234
    monkeypatch.setenv("LLMHOST_PORT", "2000")
    settings = load_settings(path)
    assert settings.port == 2000
    assert settings.host == "0.0.0.0"  # YAML still applies where env says nothing
    assert load_settings(path, port=3000).port == 3000
    assert load_settings(path, port=None).port == 2000  # None means "flag not given"


def test_nested_env_merges_with_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "engine:\n  startup_timeout: 9\n  stop_grace: 3\n")
    monkeypatch.setenv("LLMHOST_ENGINE__STARTUP_TIMEOUT", "5")
    engine = load_settings(path).engine
    assert engine.startup_timeout == 5.0
    assert engine.stop_grace == 3.0


def test_nested_env_without_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMHOST_ENGINE__STARTUP_TIMEOUT", "5")
    assert load_settings().engine.startup_timeout == 5.0


def test_llmhost_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMHOST_CONFIG", str(write(tmp_path, "port: 4321\n")))
    assert load_settings().port == 4321


def test_explicit_file_beats_llmhost_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMHOST_CONFIG", str(write(tmp_path, "port: 4321\n", "env.yaml")))
    assert load_settings(write(tmp_path, "port: 1111\n")).port == 1111


def test_unknown_key_is_named(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "models:\n  x:\n    ctxx: 5\n"))
    assert message == "config error: models.x.ctxx: unknown key"


def test_unknown_top_level_and_nested_keys(tmp_path: Path) -> None:
    assert "prot: unknown key" in config_error(write(tmp_path, "prot: 1\n"))
    assert "engine.startup: unknown key" in config_error(write(tmp_path, "engine:\n  startup: 1\n", "c2.yaml"))
    assert "defaults.gpu: unknown key" in config_error(write(tmp_path, "defaults:\n  gpu: 1\n", "c3.yaml"))


def test_wrong_type_is_named(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "port: abc\n"))
    assert message.startswith("config error: port: ")
    assert "integer" in message
    assert config_error(write(tmp_path, "models:\n  x:\n    ctx: big\n", "c2.yaml")).startswith(
        "config error: models.x.ctx: "
    )
    assert config_error(write(tmp_path, "models:\n  x:\n    ctx: 10\n", "c3.yaml")).startswith(
        "config error: models.x.ctx: "
    )


def test_each_bad_key_gets_a_line(tmp_path: Path) -> None:
    lines = config_error(write(tmp_path, "prot: 1\nport: x\n")).splitlines()
    assert len(lines) == 2
    assert sorted(line.split(":")[1].strip() for line in lines) == ["port", "prot"]


def test_bad_kwarg_is_named(tmp_path: Path) -> None:
    assert config_error(None, port=0).startswith("config error: port: ")


def test_bad_env_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMHOST_ENGINE__STARTUP_TIMEOUT", "soon")
    assert config_error(None).startswith("config error: engine.startup_timeout: ")


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "port: [1,\n  bad")
    message = config_error(path)
    assert "\n" not in message
    assert str(path) in message
    assert "not valid YAML" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    assert config_error(path) == f"{path}: the top level must be a mapping of keys"


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    message = config_error(path)
    assert str(path) in message
    assert "does not exist" in message


def test_missing_file_from_env_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMHOST_CONFIG", str(tmp_path / "absent.yaml"))
    assert load_settings().port == DEFAULT_PORT


def test_yaml_path_does_not_leak_into_the_next_load(tmp_path: Path) -> None:
    load_settings(write(tmp_path, "port: 1234\n"))
    assert YamlSource.path is None
    assert load_settings().port == DEFAULT_PORT
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, "prot: 1\n", "bad.yaml"))
    assert YamlSource.path is None
    assert load_settings().port == DEFAULT_PORT


@pytest.mark.parametrize("name", ["..", "../x", "a/../b", "a/..", "/abs/path"])
def test_bad_model_names_are_rejected(tmp_path: Path, name: str) -> None:
    message = config_error(write(tmp_path, f"models:\n  '{name}': {{}}\n"))
    assert repr(name) in message
    assert "not a valid model name" in message


@pytest.mark.parametrize("name", ["org/m:7b", "hf.co/org/repo:Q4_K_M", "x..y", "qwen2.5:0.5b"])
def test_good_model_names_are_accepted(tmp_path: Path, name: str) -> None:
    assert name in load_settings(write(tmp_path, f"models:\n  '{name}': {{}}\n")).models


@pytest.mark.parametrize("split", ["[0, 0]", "[0]", "[1, -1]"])
def test_bad_tensor_split_is_rejected(tmp_path: Path, split: str) -> None:
    message = config_error(write(tmp_path, f"models:\n  x:\n    tensor_split: {split}\n"))
    assert message.startswith("config error: models.x.tensor_split: ")
    assert "not all zero" in message


def test_tensor_split_all_zero_in_defaults(tmp_path: Path) -> None:
    assert config_error(write(tmp_path, "defaults:\n  tensor_split: [0, 0]\n")).startswith(
        "config error: defaults.tensor_split: "
    )


def test_reserved_extra_args_rejected_in_yaml(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "models:\n  x:\n    extra_args: ['--host', '0.0.0.0']\n"))
    assert message.startswith("config error: models.x.extra_args: ")
    assert "--host" in message


def test_alias_may_not_shadow_a_model(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "models:\n  a: {}\n  b:\n    aliases: [a]\n"))
    assert "models.b.aliases" in message
    assert "'a'" in message


def test_derived_dirs(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    assert settings.models_dir == tmp_path / "data" / "models"
    assert settings.engines_dir == tmp_path / "data" / "engine"
    assert settings.run_dir == tmp_path / "data" / "run"
