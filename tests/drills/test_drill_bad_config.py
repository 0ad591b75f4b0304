"""Drill 6: invalid configuration.

* At startup (unknown key, wrong type, value out of range, broken YAML, a path-like model name): ``llmhost
  serve`` refuses to start, says what is wrong in one line that names the key, and exits with code 2.
* Applied live through the engine manager (``POST /admin/models/{model}/start`` with ``overrides``, the one
  way to change a model's engine parameters while the service runs): the change is refused or rolled back and
  the model keeps serving.

Reloading the config file (SIGHUP or a file watcher) is a later issue and is not drilled here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from drill_kit import assert_serves

from conftest import DEFAULT_MODEL, LlmhostServer, free_port, run_cli, write_config

pytestmark = pytest.mark.integration

STARTUP_BOUND_S = 30.0
PROFILE = {"parallel": 1, "ctx": 1024, "threads": 1}

# (label, extra config keys, what the one error line must mention)
BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown key", {"no_such_key": 1}, "no_such_key"),
    ("unknown nested key", {"scheduler": {"queue_sise": 4}}, "scheduler.queue_sise"),
    ("wrong type", {"scheduler": {"queue_size": "lots"}}, "scheduler.queue_size"),
    ("out of range", {"max_request_bytes": -5}, "max_request_bytes"),
    ("bad profile value", {"models": {DEFAULT_MODEL: PROFILE | {"parallel": 0}}}, "parallel"),
    ("bad enum", {"log_level": "loud"}, "log_level"),
    ("path-like model name", {"models": {"../evil": PROFILE}}, "../evil"),
]


def serve_with(config: Path) -> tuple[Any, float]:
    started = time.monotonic()
    result = run_cli("serve", "--config", str(config), "--port", str(free_port()), timeout=STARTUP_BOUND_S * 2)
    return result, time.monotonic() - started


def assert_refused_in_one_line(result: Any, seconds: float, mention: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"exit code {result.returncode}, stderr: {result.stderr[-500:]}"
    assert len(lines) == 1, f"not one line: {lines}"
    assert mention in lines[0], f"the error does not name {mention!r}: {lines[0]}"
    assert "Traceback" not in result.stderr + result.stdout
    assert seconds < STARTUP_BOUND_S, f"took {seconds:.0f} s to refuse"


@pytest.mark.parametrize(("label", "extra", "mention"), BAD_CONFIGS, ids=[case[0] for case in BAD_CONFIGS])
def test_drill_6_invalid_config_at_startup_is_refused_with_exit_code_2(
    tmp_path: Path, label: str, extra: dict[str, Any], mention: str
) -> None:
    config = write_config(tmp_path, tmp_path / "data", **extra)
    result, seconds = serve_with(config)
    assert_refused_in_one_line(result, seconds, mention)
    assert not (tmp_path / "data" / "run").exists(), f"{label}: the service got far enough to create its run dir"


@pytest.mark.parametrize(
    ("label", "text", "mention"),
    [("broken YAML", "models: [unclosed\n", "not valid YAML"), ("not a mapping", "- a\n- b\n", "mapping")],
    ids=["broken YAML", "not a mapping"],
)
def test_drill_6_unreadable_config_at_startup_is_refused_with_exit_code_2(
    tmp_path: Path, label: str, text: str, mention: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    result, seconds = serve_with(config)
    assert_refused_in_one_line(result, seconds, mention)


# Engine parameters that pass or fail validation; each must leave the model serving with its old profile.
LIVE_OVERRIDES: list[tuple[str, dict[str, Any]]] = [
    ("parallel 0", {"parallel": 0}),
    ("ctx lots", {"ctx": "lots"}),
    ("ctx 1e12 (valid type, cannot fit)", {"ctx": 10**12}),
    ("an engine flag llama-server rejects", {"extra_args": ["--no-such-flag"]}),
]


def test_drill_6_invalid_engine_parameters_applied_live_leave_the_model_serving(
    start_llmhost: Callable[..., LlmhostServer],
) -> None:
    server = start_llmhost("drill6", models={DEFAULT_MODEL: PROFILE})
    assert_serves(server, "openai")
    problems = []
    for label, overrides in LIVE_OVERRIDES:
        applied = httpx.post(
            f"{server.base_url}/admin/models/{DEFAULT_MODEL}/start", json={"overrides": overrides}, timeout=120
        )
        if applied.status_code < 400:
            problems.append(f"{label}: accepted ({applied.status_code})")
        after = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
            timeout=120,
        )
        if after.status_code != 200:
            problems.append(
                f"{label}: refused with {applied.status_code}, then the model no longer serves: "
                f"{after.status_code} {after.text[:200]}"
            )
            httpx.post(f"{server.base_url}/admin/models/{DEFAULT_MODEL}/stop", timeout=120)  # clear it for the next
    assert not problems, "\n".join(problems)
    assert_serves(server, "openai")
