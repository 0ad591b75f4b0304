"""Drill 5: path traversal and absurd values in model names and parameters, in every dialect.

Every such request is refused with a 4xx (TGI's stream route: 200 with one validation error event, as TGI
does), and no file outside the store is touched: the test directory (the service's working directory, its
config and a canary tree that the names aim at), the model directory and /etc/passwd are compared before and
after, and the data directory may only have changed in the files llmhost keeps there.

A few values are not refused on purpose; for them the drill checks that they are harmless instead (a 2xx, the
engine not restarted, every status endpoint still answering):

* Ollama ``options.num_ctx``: an engine setting that belongs to the model's profile; llmhost ignores it, as it
  ignores the other engine-level Ollama options.
* Ollama ``options.temperature`` below 0: Ollama passes it to llama.cpp, which samples greedily.
* Ollama ``context`` (the token ids of an earlier answer): llmhost does not use it.
* ``keep_alive`` beyond any sensible duration: refusing it (as Ollama does, whose Go duration overflows) or
  keeping the model loaded for good are both fine, as long as nothing breaks afterwards.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from drill_kit import DIALECTS, assert_serves, tree_changes, tree_state

from conftest import DEFAULT_MODEL, LlmhostServer, free_port, model_file, shutdown_and_check, start_server

pytestmark = pytest.mark.integration

M = DEFAULT_MODEL
HI = [{"role": "user", "content": "Say hi."}]
TIMEOUT = 120.0
# Files llmhost keeps in its data directory; anything else appearing there is a finding.
DATA_FILES = ("telemetry.db", "telemetry.db-wal", "telemetry.db-shm", "telemetry.db-journal", "aliases.json", "run")
STATUS_ENDPOINTS = ("/api/ps", "/api/tags", "/v1/models", "/info", "/admin/engines", "/api/metrics/dashboard")

Case = tuple[str, str, str, Any]  # (label, method, path, JSON body or None)


def path_like_names(canary: Path) -> list[str]:
    """Model names that read as paths, aimed at the canary tree next to the data directory."""
    return [
        "../../etc/passwd",
        "/etc/passwd",
        "a\\b",
        "x\x00y",
        "n" * 10_240,
        "..",
        "~/.ssh/id_rsa",
        "C:\\Windows\\win.ini",
        "../canary/secret",
        "org/../../canary/secret.gguf",
        str(canary / "secret.gguf"),
        "x/./y",
    ]


def name_cases(name: str) -> list[Case]:
    """``name`` as the model of every route that takes one."""
    in_path = quote(name, safe="")
    return [
        ("openai chat", "POST", "/v1/chat/completions", {"model": name, "messages": HI, "max_tokens": 2}),
        ("openai completion", "POST", "/v1/completions", {"model": name, "prompt": "x", "max_tokens": 2}),
        ("openai embeddings", "POST", "/v1/embeddings", {"model": name, "input": "x"}),
        ("openai model", "GET", f"/v1/models/{in_path}", None),
        ("ollama chat", "POST", "/api/chat", {"model": name, "messages": HI, "stream": False}),
        ("ollama generate", "POST", "/api/generate", {"model": name, "prompt": "x", "stream": False}),
        ("ollama embed", "POST", "/api/embed", {"model": name, "input": "x"}),
        ("ollama embeddings", "POST", "/api/embeddings", {"model": name, "prompt": "x"}),
        ("ollama show", "POST", "/api/show", {"model": name}),
        ("ollama copy from", "POST", "/api/copy", {"source": name, "destination": "drill5-copy:latest"}),
        ("ollama copy to", "POST", "/api/copy", {"source": M, "destination": name}),
        ("ollama delete", "DELETE", "/api/delete", {"model": name}),
        ("ollama pull", "POST", "/api/pull", {"model": name, "stream": False}),
        ("vllm tokenize", "POST", "/tokenize", {"model": name, "prompt": "x"}),
        ("vllm detokenize", "POST", "/detokenize", {"model": name, "tokens": [1]}),
        *(
            (f"admin {action}", "POST", f"/admin/models/{in_path}/{action}", None)
            for action in ("load", "unload", "pin", "start", "restart", "stop")
        ),
        ("admin log", "GET", f"/admin/engines/{in_path}/log", None),
    ]


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": M, "messages": HI, "max_tokens": 2, **extra}


def ollama_chat(options: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"model": M, "messages": HI, "stream": False, "options": {"num_predict": 2, **(options or {})}, **extra}


def ollama_generate(**extra: Any) -> dict[str, Any]:
    return {"model": M, "prompt": "x", "stream": False, "options": {"num_predict": 2}, **extra}


def tgi(**parameters: Any) -> dict[str, Any]:
    return {"inputs": "Hello", "parameters": {"max_new_tokens": 2, **parameters}}


OPENAI_CASES: list[Case] = [
    *(
        (f"max_tokens {value!r}", "POST", "/v1/chat/completions", chat(max_tokens=value))
        for value in (-1, 0, 1e30, "lots", 2**31, 2**32 + 3)
    ),
    *(
        (f"temperature {value!r}", "POST", "/v1/chat/completions", chat(temperature=value))
        for value in ("NaN", "inf", "-inf", -5, 1e308)
    ),
    ("top_p 5", "POST", "/v1/chat/completions", chat(top_p=5)),
    ("n 5", "POST", "/v1/chat/completions", chat(n=5)),
    ("seed 2**70", "POST", "/v1/chat/completions", chat(seed=2**70)),
    ("stop 5", "POST", "/v1/chat/completions", chat(stop=5)),
    ("logit_bias list", "POST", "/v1/chat/completions", chat(logit_bias=[1])),
    ("stream_options without stream", "POST", "/v1/chat/completions", chat(stream_options={"include_usage": True})),
    ("keep_alive lots", "POST", "/v1/chat/completions", chat(keep_alive="lots")),
    ("completion max_tokens 1e30", "POST", "/v1/completions", {"model": M, "prompt": "x", "max_tokens": 1e30}),
    ("completion token -1", "POST", "/v1/completions", {"model": M, "prompt": [-1], "max_tokens": 2}),
    ("completion token 2**70", "POST", "/v1/completions", {"model": M, "prompt": [2**70], "max_tokens": 2}),
    ("embeddings empty input", "POST", "/v1/embeddings", {"model": M, "input": []}),
    ("embeddings encoding hex", "POST", "/v1/embeddings", {"model": M, "input": "x", "encoding_format": "hex"}),
]

OLLAMA_CASES: list[Case] = [
    *(
        (f"options.{key} {value!r}", "POST", "/api/chat", ollama_chat({key: value}))
        for key, value in (
            ("num_predict", 1e30),
            ("num_predict", "lots"),
            ("seed", 2**70),
            ("top_k", 1e30),
            ("repeat_last_n", 2**64),
            ("temperature", "NaN"),
            ("temperature", "inf"),
            ("stop", 5),
        )
    ),
    ("generate num_predict 1e30", "POST", "/api/generate", ollama_generate(options={"num_predict": 1e30})),
    ("options not an object", "POST", "/api/chat", ollama_chat() | {"options": "lots"}),
    ("keep_alive lots", "POST", "/api/chat", ollama_chat(keep_alive="lots")),
    ("keep_alive inf", "POST", "/api/chat", ollama_chat(keep_alive="inf")),
    ("format xml", "POST", "/api/chat", ollama_chat(format="xml")),
    ("think maybe", "POST", "/api/chat", ollama_chat(think="maybe")),
    ("embed dimensions -1", "POST", "/api/embed", {"model": M, "input": "x", "dimensions": -1}),
]

TGI_CASES: list[Case] = [
    *(
        (f"max_new_tokens {value!r}", "POST", "/generate", tgi(max_new_tokens=value))
        for value in (-1, 0, 1e30, "lots", 2**32 + 3)
    ),
    *(
        (f"{key} {value!r}", "POST", "/generate", tgi(**{key: value}))
        for key, value in (
            ("temperature", "NaN"),
            ("temperature", -5),
            ("top_p", 1.5),
            ("top_k", -1),
            ("seed", -1),
            ("seed", 2**70),
            ("truncate", -1),
            ("repetition_penalty", -1),
            ("best_of", 2),
            ("top_n_tokens", 5),
            ("stop", ["x"] * 100),
            ("grammar", {"type": "bogus", "value": 1}),
        )
    ),
    ("stream max_new_tokens -1", "POST", "/generate_stream", tgi(max_new_tokens=-1)),
    ("compat route temperature -5", "POST", "/", tgi(temperature=-5)),
]

VLLM_AND_ADMIN_CASES: list[Case] = [
    ("tokenize prompt 5", "POST", "/tokenize", {"model": M, "prompt": 5}),
    ("detokenize -1", "POST", "/detokenize", {"model": M, "tokens": [-1]}),
    ("detokenize 2**70", "POST", "/detokenize", {"model": M, "tokens": [2**70]}),
    ("start ctx lots", "POST", f"/admin/models/{M}/start", {"overrides": {"ctx": "lots"}}),
    ("start parallel 0", "POST", f"/admin/models/{M}/start", {"overrides": {"parallel": 0}}),
    ("start reserved flag", "POST", f"/admin/models/{M}/start", {"overrides": {"extra_args": ["--port", "1"]}}),
    ("start unknown field", "POST", f"/admin/models/{M}/start", {"overrides": {"no_such_field": 1}}),
    ("pin yes", "POST", f"/admin/models/{M}/pin", {"pinned": "yes"}),
    ("log lines -1", "GET", f"/admin/engines/{M}/log?lines=-1", None),
    ("log lines 1e9", "GET", f"/admin/engines/{M}/log?lines=1000000000", None),
    ("metrics window nan", "GET", "/api/metrics/apis?window=nan", None),
    ("metrics window 1e300", "GET", "/api/metrics/models?window=1e300", None),
]

HARMLESS_CASES: list[Case] = [
    ("ollama num_ctx 1e12", "POST", "/api/chat", ollama_chat({"num_ctx": 1e12})),
    ("ollama temperature -5", "POST", "/api/chat", ollama_chat({"temperature": -5})),
    ("ollama generate context -1", "POST", "/api/generate", ollama_generate(context=[-1])),
]

KEEP_ALIVE_CASES: list[Case] = [
    ("ollama keep_alive 999999999999h", "POST", "/api/chat", ollama_chat(keep_alive="999999999999h")),
    ("ollama keep_alive 1e300", "POST", "/api/chat", ollama_chat(keep_alive=1e300)),
    ("openai keep_alive 999999999999h", "POST", "/v1/chat/completions", chat(keep_alive="999999999999h")),
]


# --- the service and the files around it ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    """A service of its own, with a canary tree next to its data directory for the names to aim at."""
    directory = tmp_path_factory.mktemp("drill5")
    canary = directory / "canary"
    canary.mkdir()
    (canary / "secret").write_text("do not touch\n")
    (canary / "secret.gguf").write_bytes(b"GGUF not really a model\n")
    running = start_server(
        directory,
        ollama_registry=f"http://127.0.0.1:{free_port()}",  # nobody listens: a pull can never leave the machine
        models={M: {"parallel": 2, "ctx": 1024, "threads": 1}},
    )
    try:
        yield running
    finally:
        shutdown_and_check(running)


def outside_the_store(server: LlmhostServer) -> dict[str, Any]:
    directory = server.config_path.parent
    data_dir = server.data_dir.resolve()

    def skip(path: Path) -> bool:
        resolved = path.resolve()
        return resolved == data_dir or data_dir in resolved.parents or path.name.startswith("serve-")

    passwd = Path("/etc/passwd").stat()
    return {
        "test directory": tree_state(directory, skip),
        "model directory": tree_state(model_file().parent),
        "/etc/passwd": {"": (passwd.st_size, passwd.st_mtime_ns)},
    }


def unexpected_in_data_dir(server: LlmhostServer) -> list[str]:
    return [str(path) for path in server.data_dir.iterdir() if path.name not in DATA_FILES]


@contextlib.contextmanager
def nothing_outside_the_store_touched(server: LlmhostServer) -> Iterator[None]:
    before = outside_the_store(server)
    yield
    after = outside_the_store(server)
    changes = [f"{where}: {change}" for where in before for change in tree_changes(before[where], after[where])]
    assert not changes, "files outside the store changed:\n" + "\n".join(changes)
    assert not unexpected_in_data_dir(server), f"new files in the data directory: {unexpected_in_data_dir(server)}"


# --- sending and judging -------------------------------------------------------------------------------------


def send(server: LlmhostServer, method: str, path: str, body: Any) -> httpx.Response:
    """One request on a connection of its own (after a 500 the server drops the connection it came on)."""
    content = json.dumps(body).encode() if body is not None else None  # json: orjson refuses ints beyond 64 bits
    headers = {"content-type": "application/json"}
    return httpx.request(method, f"{server.base_url}{path}", content=content, headers=headers, timeout=TIMEOUT)


def refused(path: str, response: httpx.Response) -> bool:
    """A 4xx, or TGI's stream route's way of refusing: 200 with one validation error event."""
    if 400 <= response.status_code < 500:
        return True
    if path != "/generate_stream" or response.status_code != 200:
        return False
    events = [line for line in response.text.splitlines() if line.strip()]
    return len(events) == 1 and orjson.loads(events[0].removeprefix("data:")).get("error_type") == "validation"


def not_refused(server: LlmhostServer, cases: list[Case]) -> list[str]:
    problems = []
    for label, method, path, body in cases:
        response = send(server, method, path, body)
        if not refused(path, response):
            problems.append(f"{label}: {method} {path[:80]} -> {response.status_code} {response.text[:200]}")
    return problems


def broken_status_endpoints(server: LlmhostServer) -> list[str]:
    broken = []
    for path in STATUS_ENDPOINTS:
        response = httpx.get(f"{server.base_url}{path}", timeout=TIMEOUT)
        if response.status_code != 200:
            broken.append(f"GET {path} -> {response.status_code} {response.text[:200]}")
    return broken


def assert_all_refused(server: LlmhostServer, cases: list[Case]) -> None:
    with nothing_outside_the_store_touched(server):
        problems = not_refused(server, cases)
    problems += broken_status_endpoints(server)
    assert not problems, "\n".join(problems)
    for dialect in DIALECTS:
        assert_serves(server, dialect)


# --- the drills ------------------------------------------------------------------------------------------------


def test_drill_5_path_like_model_names_are_refused_in_every_route(target: LlmhostServer) -> None:
    canary = target.config_path.parent / "canary"
    cases = [
        (f"{label} {name[:40]!r}", method, path, body)
        for name in path_like_names(canary)
        for label, method, path, body in name_cases(name)
    ]
    assert_all_refused(target, cases)
    assert (canary / "secret").read_text() == "do not touch\n"


def test_drill_5_absurd_openai_parameters_are_refused(target: LlmhostServer) -> None:
    assert_all_refused(target, OPENAI_CASES)


def test_drill_5_absurd_ollama_parameters_are_refused(target: LlmhostServer) -> None:
    assert_all_refused(target, OLLAMA_CASES)


def test_drill_5_absurd_tgi_parameters_are_refused(target: LlmhostServer) -> None:
    assert_all_refused(target, TGI_CASES)


def test_drill_5_absurd_vllm_admin_and_metrics_parameters_are_refused(target: LlmhostServer) -> None:
    assert_all_refused(target, VLLM_AND_ADMIN_CASES)


def test_drill_5_ignored_ollama_options_are_harmless(target: LlmhostServer) -> None:
    assert_serves(target, "openai")
    engine = target.engine()
    argv = engine.cmdline()
    with nothing_outside_the_store_touched(target):
        answers = {label: send(target, method, path, body) for label, method, path, body in HARMLESS_CASES}
    problems = [f"{label}: {r.status_code} {r.text[:200]}" for label, r in answers.items() if r.status_code >= 500]
    problems += broken_status_endpoints(target)
    assert not problems, "\n".join(problems)
    assert target.engine().pid == engine.pid and target.engine().cmdline() == argv, "the engine was restarted"


def test_drill_5_absurd_keep_alive_is_refused_or_harmless(target: LlmhostServer) -> None:
    try:
        with nothing_outside_the_store_touched(target):
            answers = {label: send(target, method, path, body) for label, method, path, body in KEEP_ALIVE_CASES}
        problems = [f"{label}: {r.status_code} {r.text[:200]}" for label, r in answers.items() if r.status_code >= 500]
        accepted = [label for label, r in answers.items() if r.status_code < 400]
        broken = broken_status_endpoints(target)
        problems += [f"after accepting {', '.join(accepted)}: {line}" for line in broken]
        assert not problems, "\n".join(problems)
        for dialect in DIALECTS:
            assert_serves(target, dialect)
    finally:
        send(target, "POST", f"/admin/models/{M}/unload", None)  # an endless keep-alive must not outlive the test


def test_drill_5_copy_and_delete_stay_inside_the_store(target: LlmhostServer) -> None:
    canary = target.config_path.parent / "canary"
    escapes = ["../canary/copied", "../../canary/copied", str(canary / "copied"), "..\\canary\\copied", "x/../../y"]
    with nothing_outside_the_store_touched(target):
        problems = not_refused(
            target,
            [(f"copy to {name!r}", "POST", "/api/copy", {"source": M, "destination": name}) for name in escapes]
            + [(f"delete {name!r}", "DELETE", "/api/delete", {"model": name}) for name in escapes]
            + [("delete the model itself", "DELETE", "/api/delete", {"model": M})],
        )
        copied = send(target, "POST", "/api/copy", {"source": M, "destination": "drill5-copy:latest"})
        deleted = send(target, "DELETE", "/api/delete", {"model": "drill5-copy:latest"})
    assert not problems, "\n".join(problems)
    assert copied.status_code == 200 and deleted.status_code == 200, (copied.text, deleted.text)
    assert not list(canary.glob("copied*")), "a copy landed in the canary tree"
    assert model_file().is_file()
