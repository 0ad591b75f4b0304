"""Drill 4: schemathesis against the OpenAPI schema of every endpoint, and garbage bodies to every POST route:
no 5xx, ever.

What is fuzzed, and what is left out:

* The schema as the service publishes it (``/openapi.json``): every operation, ``MAX_EXAMPLES`` generated cases
  each, checked with ``not_a_server_error`` only. Left out: ``GET /api/events``, an endless SSE stream (one
  dashboard snapshot a second until the client leaves), which a request-response fuzzer cannot finish.
* The admin routes stay in: schemathesis makes up model names, which are refused (400) or unknown (404), so
  ``/admin/models/{model}/stop`` and friends never act on the real model.
* ``/api/pull`` stays in, and the service's ``ollama_registry`` is a loopback port nobody listens on, so no
  request can leave the machine.
* Most routes read raw JSON, so the schema has no request bodies. A second pass (``BODY_EXAMPLES`` cases per
  operation) adds one to each body route: an object with the route's field names and *any* JSON as their
  values (TGI's ``max_new_tokens`` is kept to 1..4, the one field that would otherwise make a case generate
  1024 tokens). ``/api/pull`` gets no such body: a well-formed name would be fetched from the (dead) registry,
  a 502 by design.
* Then hand-written absurd bodies (wrong types, huge and negative numbers, deep nesting, 1 MB strings under the
  size limit, a body over it, control characters, invalid JSON and UTF-8) go to every POST and DELETE route:
  each must be refused with a 4xx (TGI's stream route answers 200 with one validation error event, as TGI does).
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import schemathesis
from drill_kit import DIALECTS, assert_serves
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from conftest import DEFAULT_MODEL, MAX_REQUEST_BYTES, LlmhostServer, free_port, shutdown_and_check, start_server

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 10
BODY_EXAMPLES = 30  # the bodies are where the parsers are: cheap (about 20 ms a case), so more of them
BOUND_S = 120.0
REQUEST_TIMEOUT = 60.0
EXCLUDED_PATHS = ("/api/events",)
TRAVERSAL = quote("../x", safe="")  # a model name in a path that is refused before anything happens

TGI_PARAMETERS = {
    "type": "object",
    "required": ["max_new_tokens"],
    "properties": {
        "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": 4},
        **{name: {} for name in ("temperature", "top_k", "top_p", "typical_p", "seed", "stop", "details")},
        **{name: {} for name in ("decoder_input_details", "grammar", "truncate", "repetition_penalty")},
        **{name: {} for name in ("return_full_text", "do_sample", "watermark", "top_n_tokens", "best_of")},
    },
}
TGI_BODY = {
    "type": "object",
    "required": ["parameters"],
    "properties": {"inputs": {}, "stream": {}, "parameters": TGI_PARAMETERS},
}
OPENAI_SAMPLING = ("model", "stream", "stream_options", "max_tokens", "temperature", "top_p", "n", "stop", "seed")
OLLAMA_GENERATION = ("model", "stream", "format", "options", "keep_alive", "think")
BODY_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/v1/chat/completions"): (*OPENAI_SAMPLING, "messages", "tools", "tool_choice", "response_format"),
    ("post", "/v1/completions"): (*OPENAI_SAMPLING, "prompt", "echo", "logit_bias", "keep_alive"),
    ("post", "/v1/embeddings"): ("model", "input", "encoding_format", "dimensions"),
    ("post", "/api/chat"): (*OLLAMA_GENERATION, "messages", "tools"),
    ("post", "/api/generate"): (*OLLAMA_GENERATION, "prompt", "suffix", "system", "template", "context", "raw"),
    ("post", "/api/embed"): ("model", "input", "truncate", "dimensions", "options", "keep_alive"),
    ("post", "/api/embeddings"): ("model", "prompt", "options", "keep_alive"),
    ("post", "/api/show"): ("model", "name", "verbose"),
    ("post", "/api/copy"): ("source", "destination"),
    ("delete", "/api/delete"): ("model", "name"),
    ("post", "/tokenize"): ("model", "prompt", "messages", "add_special_tokens", "inputs"),
    ("post", "/detokenize"): ("model", "tokens"),
    ("post", "/admin/models/{model}/start"): ("overrides",),
    ("post", "/admin/models/{model}/pin"): ("pinned",),
}
TGI_ROUTES = (("post", "/"), ("post", "/generate"), ("post", "/generate_stream"))

INVALID_EVERYWHERE = {"model": "../x", "parameters": "x", "overrides": "x", "pinned": "x", "source": "", "tokens": "x"}
DEEP = 200  # orjson writes at most 255 levels; the raw 5000-level body below goes deeper


def nested(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def garbage_bodies() -> Iterator[tuple[str, bytes]]:
    """(label, raw body): each must be refused by every POST/DELETE route."""
    yield "empty", b""
    yield "not JSON", b'{"model": '
    yield "invalid UTF-8", b'{"model": "\xff\xfe"}'
    yield "lone surrogate", b'{"model": "\\ud800"}'
    for label, value in (("array", []), ("string", "x"), ("number", 1e308), ("null", None), ("true", True)):
        yield label, orjson.dumps(value)
    wrong_types = {
        "model": 5, "messages": "hi", "prompt": {"a": 1}, "input": {}, "inputs": 7, "parameters": [],
        "options": "x", "source": 1, "destination": None, "tokens": "x", "overrides": [], "pinned": "yes",
        "stream": "yes", "name": [], "max_tokens": "lots",
    }  # fmt: skip
    yield "wrong types", orjson.dumps(wrong_types)
    huge = {
        "max_tokens": 1e308, "temperature": 1e308, "seed": 2**63, "top_k": -(2**63), "dimensions": 2**62,
        "options": {"num_predict": 2**63, "seed": 2**63}, "keep_alive": 1e308, "messages": [{"role": "user"}],
    }  # fmt: skip
    yield "huge numbers", orjson.dumps(INVALID_EVERYWHERE | huge)
    negative = {"max_tokens": -1, "temperature": -5, "options": {"num_predict": -1}, "tokens": [-1], "n": -1}
    yield "negative numbers", orjson.dumps(INVALID_EVERYWHERE | negative)
    yield "nested garbage", orjson.dumps(INVALID_EVERYWHERE | {"messages": nested(DEEP), "prompt": nested(DEEP)})
    yield "nesting beyond the parser", b"[" * 5000 + b"]" * 5000
    megabyte = "x" * 1_000_000
    yield "1 MB model name", orjson.dumps({"model": megabyte})
    content = {"messages": [{"role": "user", "content": megabyte}], "prompt": megabyte, "inputs": megabyte}
    yield "1 MB prompt", orjson.dumps(INVALID_EVERYWHERE | content)
    yield "over max_request_bytes", orjson.dumps({"model": "x" * (MAX_REQUEST_BYTES + 1)})
    control = "\x00\x07\x1b[2J\u202e\ufeff"
    yield "control characters", orjson.dumps(INVALID_EVERYWHERE | {"model": control, "messages": control})


# --- the service -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    """A service of its own: the fuzzer hits admin routes and loads the engine with odd requests."""
    running = start_server(
        tmp_path_factory.mktemp("drill4"),
        ollama_registry=f"http://127.0.0.1:{free_port()}",  # nobody listens: a pull can never leave the machine
        models={DEFAULT_MODEL: {"parallel": 2, "ctx": 512, "threads": 1}},
    )
    try:
        yield running
    finally:
        shutdown_and_check(running)


# --- schemathesis --------------------------------------------------------------------------------------------


def published_schema(server: LlmhostServer) -> dict[str, Any]:
    raw: dict[str, Any] = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    raw["paths"] = {path: item for path, item in raw["paths"].items() if path not in EXCLUDED_PATHS}
    return raw


def any_values(fields: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "object", "properties": {field: {} for field in fields}}


def with_fuzzed_bodies(raw: dict[str, Any]) -> dict[str, Any]:
    """Only the body routes, each with a JSON body of its field names and values of any type."""
    bodies = {key: any_values(fields) for key, fields in BODY_FIELDS.items()} | {key: TGI_BODY for key in TGI_ROUTES}
    paths: dict[str, Any] = {}
    for (method, path), body in bodies.items():
        operation = copy.deepcopy(raw["paths"][path][method])
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        paths.setdefault(path, {})[method] = operation
    return raw | {"paths": paths}


def fuzz(schema: Any, base_url: str, examples: int) -> tuple[Counter[int], list[str]]:
    """``examples`` cases per operation; returns the statuses seen and one line per server error."""
    calls: list[int] = []
    errors: list[str] = []
    for result in schema.get_all_operations():
        probe_operation(result.ok(), base_url, examples, calls, errors)
    return Counter(calls), errors


def probe_operation(operation: Any, base_url: str, examples: int, calls: list[int], errors: list[str]) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def probe(case: Any) -> None:
        response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT)
        calls.append(response.status_code)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except Exception:
            sent = f"path={case.path_parameters} query={case.query} body={str(case.body)[:200]}"
            errors.append(f"{operation.label} {sent} -> {response.status_code} {response.text[:200]}")

    probe()


def test_drill_4_schemathesis_finds_no_server_error(fuzzed: LlmhostServer) -> None:
    started = time.monotonic()
    published = schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json").exclude(path=list(EXCLUDED_PATHS))
    statuses, errors = fuzz(published, fuzzed.base_url, MAX_EXAMPLES)
    with_bodies = schemathesis.openapi.from_dict(with_fuzzed_bodies(published_schema(fuzzed)))
    body_statuses, body_errors = fuzz(with_bodies, fuzzed.base_url, BODY_EXAMPLES)
    elapsed = time.monotonic() - started
    print(f"schemathesis in {elapsed:.0f} s: published schema {dict(statuses)}, with bodies {dict(body_statuses)}")
    assert not errors + body_errors, "server errors:\n" + "\n".join(errors + body_errors)
    assert elapsed < BOUND_S, f"the fuzzing took {elapsed:.0f} s"
    for dialect in DIALECTS:
        assert_serves(fuzzed, dialect)


# --- absurd bodies -------------------------------------------------------------------------------------------


def body_routes(server: LlmhostServer) -> list[tuple[str, str]]:
    """(method, URL path) of every POST and DELETE operation; a model in the path is a refused name."""
    routes = []
    for path, item in published_schema(server)["paths"].items():
        for method in item:
            if method in ("post", "delete"):
                routes.append((method.upper(), path.replace("{model}", TRAVERSAL)))
    return routes


def send_once(server: LlmhostServer, method: str, path: str, body: bytes) -> httpx.Response:
    """One request on a connection of its own (after a 500 the server drops the connection it came on)."""
    headers = {"content-type": "application/json"}
    return httpx.request(method, f"{server.base_url}{path}", content=body, headers=headers, timeout=REQUEST_TIMEOUT)


def refused(path: str, response: httpx.Response) -> bool:
    """A 4xx, or TGI's stream route's way of refusing: 200 with one validation error event."""
    if 400 <= response.status_code < 500:
        return True
    if path != "/generate_stream" or response.status_code != 200:
        return False
    events = [line for line in response.text.splitlines() if line.strip()]
    return len(events) == 1 and orjson.loads(events[0].removeprefix("data:")).get("error_type") == "validation"


def test_drill_4_absurd_bodies_to_every_post_route_are_refused(fuzzed: LlmhostServer) -> None:
    routes = body_routes(fuzzed)
    assert len(routes) >= 20, routes
    problems = []
    for label, body in garbage_bodies():
        for method, path in routes:
            response = send_once(fuzzed, method, path, body)
            if not refused(path, response):
                problems.append(f"{label}: {method} {path} -> {response.status_code} {response.text[:200]}")
    assert not problems, "not refused:\n" + "\n".join(problems)
    for dialect in DIALECTS:
        assert_serves(fuzzed, dialect)
