"""``llmhost advise`` without a service: the offline report from the config, the catalog (the real default model)
and the (fake) GPUs, in the terminal and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from conftest import DEFAULT_MODEL, free_port, model_file, run_cli
from llmhost.cli import app


def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    body = {
        "data_dir": str(tmp_path / "data"),
        "model_dirs": [str(model_file().parent)],
        "scan_ollama": False,
        "scan_hf_cache": False,
        "port": free_port(),  # nothing listens there: the CLI falls back to offline
        "gpu_backend": "fake",
        "fake_gpus": "4x8gb-x4",
        "advisor": {"electricity_price_per_kwh": 0.3, "currency": "EUR"},
        "models": {DEFAULT_MODEL: {"ctx": 1024, "parallel": 4}},
    }
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def test_offline_json_and_terminal(tmp_path: Path) -> None:
    path = config(tmp_path)
    result = CliRunner().invoke(app, ["advise", "-c", str(path), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["source"] == "offline" and len(body["gpus"]) == 4
    kinds = {r["kind"] for r in body["recommendations"]}
    assert {"pcie_link_below_max", "split_fits_on_one_gpu", "slots_short_of_context"} <= kinds
    (row,) = [m for m in body["efficiency"]["models"] if m["model"] == DEFAULT_MODEL]
    assert row["joules_per_token"] is None and "needs the running service" in row["not_measured"]
    (ctx,) = [c for c in body["contexts"] if c["model"] == DEFAULT_MODEL]
    assert (ctx["true_context"], ctx["ctx_per_slot"], ctx["slots"]) == (8192, 1024, 4)  # SmolLM2's GGUF says 8192

    text = CliRunner().invoke(app, ["advise", "-c", str(path)])
    assert text.exit_code == 0, text.output
    for expected in ("Hardware optimization score", "GPU 3's PCIe link runs at 25% of its maximum", "Gen 4 x4 (nvml)"):
        assert expected in text.stdout
    assert "Memory fit: " + DEFAULT_MODEL in text.stdout and "Context lengths" in text.stdout


def test_offline_json_stays_parseable_with_the_real_gpu_backend(tmp_path: Path) -> None:
    """NVML (absent on a machine without a GPU) logs why: that goes to stderr, never into the JSON."""
    path = config(tmp_path)
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    body.pop("fake_gpus")
    body["gpu_backend"] = "nvml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    result = run_cli("advise", "-c", str(path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["source"] == "offline"
    assert bool(report["gpus"]) != bool(report["no_gpu_reason"])  # GPUs, or the reason there are none
