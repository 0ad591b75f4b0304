"""Shared pieces of the fault drills: one request shape per dialect, the service's own runtime figures
(``/admin/runtime``) and polling with a deadline.

Every drill talks to a real ``llmhost serve`` on 127.0.0.1 (see ``tests/conftest.py``); nothing here leaves
the loopback interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from conftest import DEFAULT_MODEL, LlmhostServer

DIALECTS = ("openai", "ollama", "tgi")
LONG_PROMPT = "Write a very long story about a lighthouse keeper, the sea and the ships that pass."
RAW_PROMPT = "Once upon a time"  # TGI prompts are raw text: a chat instruction would end at once with EOS
REQUEST_TIMEOUT = 120.0

# What may stay above the baseline once a drill is over: the request that reads /admin/runtime, a keep-alive
# connection or two to the engine, a backoff task that is finishing.
RUNTIME_SLACK = {"tasks": 3, "connections": 4, "open_files": 2}


@dataclass(frozen=True)
class Call:
    """One HTTP request: a POST of ``body`` to ``path``."""

    path: str
    body: dict[str, Any]


def long_stream(dialect: str, max_tokens: int = 2000) -> Call:
    """A streamed generation that runs for ``max_tokens`` tokens unless it is cancelled."""
    if dialect == "openai":
        return Call(
            "/v1/chat/completions",
            {
                "model": DEFAULT_MODEL,
                "messages": [{"role": "user", "content": LONG_PROMPT}],
                "max_tokens": max_tokens,
                "temperature": 0,
                "ignore_eos": True,
                "stream": True,
            },
        )
    if dialect == "ollama":
        return Call(
            "/api/chat",
            {
                "model": DEFAULT_MODEL,
                "messages": [{"role": "user", "content": LONG_PROMPT}],
                "options": {"num_predict": max_tokens, "temperature": 0},
                "stream": True,
            },
        )
    return Call("/generate_stream", {"inputs": RAW_PROMPT, "parameters": {"max_new_tokens": max_tokens}})


def answer(dialect: str, max_tokens: int = 4, prompt: str = "Say hi.") -> Call:
    """A non-streamed generation of at most ``max_tokens`` tokens (OpenAI: exactly that many, ignore_eos)."""
    messages = [{"role": "user", "content": prompt}]
    if dialect == "openai":
        body = {"model": DEFAULT_MODEL, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        return Call("/v1/chat/completions", body | {"ignore_eos": True})
    if dialect == "ollama":
        options = {"num_predict": max_tokens, "temperature": 0}
        return Call("/api/chat", {"model": DEFAULT_MODEL, "messages": messages, "options": options, "stream": False})
    return Call("/generate", {"inputs": prompt, "parameters": {"max_new_tokens": max_tokens}})


def answered_text(dialect: str, payload: Any) -> str | None:
    """The generated text of a non-streamed answer, or None when the payload is not a proper answer."""
    try:
        if dialect == "openai":
            return str(payload["choices"][0]["message"]["content"])
        if dialect == "ollama":
            return str(payload["message"]["content"]) if payload.get("done") else None
        return str(payload["generated_text"])
    except (KeyError, IndexError, TypeError):
        return None


def assert_serves(server: LlmhostServer, dialect: str) -> httpx.Response:
    """A short request in ``dialect`` is answered with 200 and text; returns the response."""
    call = answer(dialect)
    response = httpx.post(f"{server.base_url}{call.path}", json=call.body, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, f"{dialect}: {response.status_code} {response.text[:300]}"
    assert answered_text(dialect, response.json()), f"{dialect}: no text in {response.text[:300]}"
    return response


def stream_error(dialect: str, lines: list[str]) -> str | None:
    """The error a dialect puts at the end of a stream that failed, or None when there is none.

    OpenAI: ``data: {"error": {...}}`` then ``data: [DONE]``; Ollama: a last NDJSON line ``{"error": "..."}``;
    TGI: a last ``data:{"error": "...", "error_type": "generation"}`` event."""
    data = [line.removeprefix("data:").strip() for line in lines if line.strip()]
    if dialect == "openai":
        if len(data) < 2 or data[-1] != "[DONE]":
            return None
        last = orjson.loads(data[-2])
        error = last.get("error") if isinstance(last, dict) else None
        return str(error["message"]) if isinstance(error, dict) and error.get("message") else None
    if not data:
        return None
    last = orjson.loads(data[-1])
    if not isinstance(last, dict) or not last.get("error"):
        return None
    if dialect == "tgi" and last.get("error_type") != "generation":
        return None
    return str(last["error"])


# --- the service's own figures ---------------------------------------------------------------------------


def get_json(server: LlmhostServer, path: str) -> Any:
    response = httpx.get(f"{server.base_url}{path}", timeout=30)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:300]}"
    return response.json()


def runtime(server: LlmhostServer) -> dict[str, float]:
    """``/admin/runtime``: tasks, threads, rss_mib, open_files, connections of the service process."""
    figures: dict[str, float] = get_json(server, "/admin/runtime")
    return figures


def quiet_runtime(server: LlmhostServer, samples: int = 3) -> dict[str, float]:
    """The baseline: the lowest of a few readings a moment apart (a reading can catch a passing task)."""
    readings = []
    for _ in range(samples):
        readings.append(runtime(server))
        time.sleep(0.2)
    return {key: min(reading[key] for reading in readings) for key in readings[0]}


def runtime_excess(baseline: Mapping[str, float], now: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Figures above baseline + RUNTIME_SLACK, as {name: (baseline, now)}."""
    return {key: (baseline[key], now[key]) for key, slack in RUNTIME_SLACK.items() if now[key] > baseline[key] + slack}


def settled_runtime(server: LlmhostServer, baseline: Mapping[str, float], timeout: float = 15.0) -> dict[str, float]:
    """Poll ``/admin/runtime`` until it is back within RUNTIME_SLACK of ``baseline``; returns the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        now = runtime(server)
        if not runtime_excess(baseline, now) or time.monotonic() >= deadline:
            return now
        time.sleep(0.25)


def active_requests(server: LlmhostServer) -> list[dict[str, Any]]:
    active: list[dict[str, Any]] = get_json(server, "/api/metrics/dashboard")["active_requests"]
    return active


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --- files -------------------------------------------------------------------------------------------------


def tree_state(root: Path, skip: Callable[[Path], bool] = lambda _path: False) -> dict[str, tuple[int, int]]:
    """Every file and directory below ``root`` as {relative path: (size, mtime_ns)}."""
    state: dict[str, tuple[int, int]] = {}
    if not root.exists():
        return state
    for path in sorted(root.rglob("*")):
        if skip(path):
            continue
        stat = path.lstat()
        state[str(path.relative_to(root))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return state


def tree_changes(before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]) -> list[str]:
    """What differs between two ``tree_state`` snapshots, one line per path."""
    created = [f"created {path}" for path in after if path not in before]
    removed = [f"removed {path}" for path in before if path not in after]
    changed = [f"modified {path}" for path in before if path in after and before[path] != after[path]]
    return created + removed + changed
