"""Drill 7: the service itself SIGKILLed while it runs an engine, then started again on the same data directory.

Beyond ``tests/integration/test_service_lifecycle.py`` (PDEATHSIG and the reaping of planted orphans), this
checks what a restart recovers: no llama-server of the killed service is left, no stale pid file; the request
history in ``/api/metrics/apis`` (per dialect and per request id) survived; a name made with ``/api/copy``
survived; and the engine is not started at boot but again on the first request, in every dialect.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import httpx
import psutil
import pytest
from drill_kit import DIALECTS, assert_serves, get_json, wait_until

from conftest import DEFAULT_MODEL, ENGINE_NAME, LlmhostServer, wait_dead

pytestmark = pytest.mark.integration

COPY = "drill7-copy:latest"
SHORT = {"num_predict": 4}


def history(server: LlmhostServer) -> dict[str, Any]:
    answer: dict[str, Any] = get_json(server, "/api/metrics/apis?limit=1000")
    return answer


def recorded_ids(server: LlmhostServer) -> set[str]:
    return {request["id"] for request in history(server)["requests"]}


def counts_by_dialect(server: LlmhostServer) -> dict[str, int]:
    return {row["key"]: row["requests"] for row in history(server)["dialects"]}


def engines_serving(port: int) -> list[psutil.Process]:
    """llama-server processes anywhere on the machine that listen on ``port``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        argv = proc.info["cmdline"] or []
        if argv and argv[0].endswith(ENGINE_NAME) and "--port" in argv and argv[argv.index("--port") + 1] == str(port):
            found.append(proc)
    return found


def test_drill_7_service_sigkill_restart_recovers_state_without_orphans(
    start_llmhost: Callable[..., LlmhostServer],
) -> None:
    first = start_llmhost("drill7")
    request_ids = {assert_serves(first, dialect).headers["x-request-id"] for dialect in DIALECTS}
    copied = httpx.post(f"{first.base_url}/api/copy", json={"source": DEFAULT_MODEL, "destination": COPY}, timeout=30)
    assert copied.status_code == 200, copied.text
    assert wait_until(lambda: request_ids <= recorded_ids(first), 10), "the requests never reached the history"
    before = counts_by_dialect(first)
    engine = first.engine()
    engine_port = int(engine.cmdline()[engine.cmdline().index("--port") + 1])

    first.stop(signal.SIGKILL)
    assert not wait_dead([engine], timeout=5), "llama-server outlived its SIGKILLed service"
    second = start_llmhost("drill7-restarted", data_dir=first.data_dir)

    assert not engines_serving(engine_port), "a llama-server of the killed service is still running"
    assert sorted(first.run_dir.glob("engine-*.json")) == [], "stale pid files survived the restart"
    assert second.engines() == [], "the restarted service started an engine before any request"
    assert request_ids <= recorded_ids(second), "requests made before the crash are missing from the history"
    after = counts_by_dialect(second)
    assert all(after.get(dialect, 0) >= count for dialect, count in before.items()), (before, after)
    assert COPY in [model["name"] for model in get_json(second, "/api/tags")["models"]], "the copied name was lost"

    for dialect in DIALECTS:
        assert_serves(second, dialect)
    assert len(second.engines()) == 1
    by_copy = httpx.post(
        f"{second.base_url}/api/chat",
        json={"model": COPY, "messages": [{"role": "user", "content": "hi"}], "stream": False, "options": SHORT},
        timeout=120,
    )
    assert by_copy.status_code == 200, by_copy.text
