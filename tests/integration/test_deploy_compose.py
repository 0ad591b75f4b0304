"""The DGX Spark example deployment cannot run here (no GPU): its structure is checked, and llmhost's config in
it must load and name both upstreams as providers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmhost.config import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "compose"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_compose_runs_vllm_ollama_and_llmhost_in_front() -> None:
    services = compose()["services"]
    assert set(services) == {"vllm", "ollama", "llmhost"}
    assert any("Qwen3-32B-FP8" in part for part in services["vllm"]["command"])
    assert services["llmhost"]["ports"] == ["11436:11436"]
    assert set(services["llmhost"]["depends_on"]) == {"vllm", "ollama"}
    mounts = services["llmhost"]["volumes"]
    assert "./llmhost.yaml:/etc/llmhost/llmhost.yaml:ro" in mounts
    assert "/etc/llmhost/llmhost.yaml" in services["llmhost"]["command"]
    for name in ("vllm", "ollama"):
        gpu = services[name]["deploy"]["resources"]["reservations"]["devices"][0]
        assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert ((DEPLOY / services["llmhost"]["build"]["context"]).resolve() / "Dockerfile").is_file()
    assert "unified memory" in (DEPLOY / "compose.yaml").read_text()


def test_llmhost_config_of_the_deployment_loads() -> None:
    settings = load_settings(DEPLOY / "llmhost.yaml")
    kinds = {provider.name: (provider.kind, provider.base_url) for provider in settings.providers}
    assert kinds == {"vllm": ("vllm", "http://vllm:8000"), "ollama": ("ollama", "http://ollama:11434")}
    assert settings.port == 11436


def test_the_plain_docker_deployment() -> None:
    docker = DEPLOY.parent / "docker"
    service = yaml.safe_load((docker / "compose.yaml").read_text())["services"]["llmhost"]
    assert service["ports"] == ["127.0.0.1:11436:11436"]
    assert service["healthcheck"]["test"][-1] == "http://localhost:11436/health"
    assert ((docker / service["build"]["context"]).resolve() / "Dockerfile").is_file()
    assert "--insecure" in service["command"]  # published on loopback only, as the file explains
    assert load_settings(docker / "llmhost.yaml").host == "0.0.0.0"
