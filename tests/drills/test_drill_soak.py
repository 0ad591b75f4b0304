"""Drill 8, short form: ``benchmarks/soak.py`` for about 25 seconds against a service it starts itself.

The script runs as a subprocess, exactly as a user runs it; it must pass (exit 0) and its JSON report must show
a real load: every kind of request in the mix sent, clients that walked away, no error, no request left active,
no engine outliving the service, memory figures sampled for the service and its engines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env

pytestmark = pytest.mark.integration

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"
MINUTES = 0.4
BOUND_S = 120.0


def test_drill_8_soak_short(tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    argv = [sys.executable, str(SOAK), "--minutes", str(MINUTES), "--sample-interval", "1", "--json", str(report_path)]
    result = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=BOUND_S, check=False)
    output = f"{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"soak failed with exit code {result.returncode}:\n{output}"

    report = json.loads(report_path.read_text())
    summary = report["summary"]
    print(result.stdout[-2500:])
    assert report["passed"] and not report["failures"]
    assert summary["requests"] >= 20, summary["requests"]
    assert all(kind["requests"] >= 1 for kind in summary["kinds"].values()), summary["kinds"]
    assert summary["kinds"]["disconnect"]["requests"] >= 1
    assert summary["errors"] == 0, summary["error_messages"]
    assert summary["active_after"] == 0
    assert summary["leftover_engines"] == []
    assert summary["samples"] >= 5
    for figure in ("service_rss_mib", "engine_rss_mib", "tasks"):
        assert summary[figure]["growth"] is not None, f"{figure} was not sampled"
