"""Model lists per provider kind, and the names llmhost serves them under."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmhost.config import ProviderSettings
from llmhost.providers.discovery import DiscoveryError, parse_listing
from llmhost.providers.provider import Provider


def test_openai_vllm_llamacpp_list_data_ids() -> None:
    body = {"object": "list", "data": [{"id": "qwen3-32b"}, {"id": "qwen3-32b"}, {"id": "m2"}, {"nope": 1}]}
    for kind in ("openai", "vllm", "llamacpp"):
        assert parse_listing(kind, body) == ["qwen3-32b", "m2"]  # type: ignore[arg-type]


def test_ollama_lists_models_and_tgi_has_one() -> None:
    assert parse_listing("ollama", {"models": [{"name": "a:latest", "model": "a:latest"}, {"name": "b:1"}]}) == [
        "a:latest",
        "b:1",
    ]
    assert parse_listing("tgi", {"model_id": "org/m", "max_input_tokens": 10}) == ["org/m"]


@pytest.mark.parametrize(("kind", "body"), [("openai", {"data": None}), ("ollama", []), ("tgi", {"x": 1})])
def test_wrong_listings_are_discovery_errors(kind: str, body: object) -> None:
    with pytest.raises(DiscoveryError):
        parse_listing(kind, body)  # type: ignore[arg-type]


def test_served_names_use_aliases_then_the_prefix() -> None:
    settings = ProviderSettings(
        name="spark",
        base_url="http://spark:8000/v1",
        prefix="spark/",
        aliases={"Qwen/Qwen3-32B": "qwen3"},
        models=["Qwen/Qwen3-32B", "m"],
    )
    provider = Provider(settings)
    assert settings.base_url == "http://spark:8000"
    assert provider.served_models() == {"qwen3": "Qwen/Qwen3-32B", "spark/m": "m"}


def test_the_api_key_comes_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_text("sk-file\n")
    assert ProviderSettings(name="a", base_url="http://a", api_key_file=tmp_path / "key").key() == "sk-file"
    monkeypatch.setenv("SPARK_KEY", "sk-env")
    assert ProviderSettings(name="a", base_url="http://a", api_key_env="SPARK_KEY").key() == "sk-env"
