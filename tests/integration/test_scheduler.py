"""The scheduler with real engines: several models on a budget that holds two of them.

One GGUF (the default model) is configured under several names with different context sizes, so each name
is its own engine with its own memory. What this build of llama-server reports, and what llmhost
estimates before loading (MiB, CPU, one slot, threads 1):

    profile   ctx    estimate   engine report (model 92.1 + KV + compute ~100 + output 0.19)
    small-a   1024   232.8      215.2
    small-b   2048   255.3      237.6
    small-c    512   221.6      203.4

Placement charges the *estimate* of the model being loaded and the *report* of loaded ones, so two fit in
BUDGET_MIB when the worst pair is at most 215.2 + 255.3 = 470.5, and three never fit since the smallest
trio is at least 203.4 + 215.2 + 255.3 = 673.9. ``test_budget_holds_exactly_two`` checks these numbers
against the running build, so a change in llama.cpp's buffers fails there first, with the numbers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import psutil
import pytest

from conftest import LlmhostServer, is_alive, model_file, run_cli
from llmhost.config import ModelProfile
from llmhost.engines import memory
from llmhost.models.gguf_meta import read_gguf_meta

pytestmark = pytest.mark.integration

BUDGET_MIB = 560
PROMPT = [{"role": "user", "content": "Tell me a story about a lighthouse."}]
Start = Callable[..., LlmhostServer]


# --- configuration -----------------------------------------------------------------------------------


def profile(ctx: int, **extra: Any) -> dict[str, Any]:
    return {"path": str(model_file()), "ctx": ctx, "threads": 1, "parallel": 1, **extra}


def three_models(
    a: dict[str, Any] | None = None, b: dict[str, Any] | None = None, c: dict[str, Any] | None = None
) -> dict[str, Any]:
    """small-a (ctx 1024), small-b (ctx 2048, priority 1), small-c (ctx 512); overrides per model."""
    return {
        "small-a": profile(1024, **(a or {})),
        "small-b": profile(2048, **{"priority": 1, **(b or {})}),
        "small-c": profile(512, **(c or {})),
    }


def budget(mib: float = BUDGET_MIB, **extra: Any) -> dict[str, Any]:
    return {"host_memory_mib": mib, "reserve_mib": 0, **extra}


def serve(start: Start, name: str, models: dict[str, Any], **scheduler: Any) -> LlmhostServer:
    return start(name, models=models, scheduler=budget(**scheduler))


# --- talking to it -----------------------------------------------------------------------------------


def chat(server: LlmhostServer, model: str, max_tokens: int = 4, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": PROMPT, "max_tokens": max_tokens, "temperature": 0, **extra}
    return httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=120)


def ok_chat(server: LlmhostServer, model: str, max_tokens: int = 4, **extra: Any) -> dict[str, Any]:
    response = chat(server, model, max_tokens, **extra)
    assert response.status_code == 200, f"{model}: {response.status_code} {response.text}"
    result: dict[str, Any] = response.json()
    return result


def status(server: LlmhostServer) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/admin/engines", timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def loaded(server: LlmhostServer) -> list[str]:
    return sorted(engine["model"] for engine in status(server)["engines"])


def engine_status(server: LlmhostServer, model: str) -> dict[str, Any]:
    for engine in status(server)["engines"]:
        if engine["model"] == model:
            result: dict[str, Any] = engine
            return result
    raise AssertionError(f"{model} is not loaded: {loaded(server)}")


def events(server: LlmhostServer) -> list[dict[str, Any]]:
    """Scheduler events without their timestamps: {"event", "model", "reason"}."""
    return [{k: v for k, v in e.items() if k != "time"} for e in status(server)["events"]]


def load_event(model: str) -> dict[str, Any]:
    return {"event": "load", "model": model, "reason": None}


def unload_event(model: str, reason: str) -> dict[str, Any]:
    return {"event": "unload", "model": model, "reason": reason}


def evicted(model: str, for_model: str) -> dict[str, Any]:
    return unload_event(model, f"evicted to make room for {for_model}")


def admin_post(server: LlmhostServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/admin/models/{path}", timeout=120, **kwargs)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def engine_process(server: LlmhostServer, model: str) -> psutil.Process:
    return psutil.Process(engine_status(server, model)["pid"])


@contextmanager
def stream(server: LlmhostServer, model: str, max_tokens: int, **extra: Any) -> Iterator[Iterator[str]]:
    """A streamed chat completion that generates exactly ``max_tokens`` (ignore_eos); yields its data lines."""
    body = {
        "model": model,
        "messages": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body, timeout=120) as response:
        assert response.status_code == 200, response.read().decode()
        yield (line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: "))


def first_content(lines: Iterator[str]) -> None:
    for line in lines:
        if '"content":"' in line and '"content":""' not in line:
            return
    pytest.fail("the stream ended before it produced content")


def read_to_end(lines: Iterator[str]) -> tuple[str | None, int | None, bool]:
    """(finish_reason, completion_tokens, saw [DONE]) of the rest of a stream."""
    finish, tokens, done = None, None, False
    for line in lines:
        if line == "[DONE]":
            done = True
            continue
        chunk = json.loads(line)
        for choice in chunk.get("choices") or []:
            finish = choice.get("finish_reason") or finish
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
    return finish, tokens, done


def openai_client(server: LlmhostServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="test", max_retries=0, timeout=120)


# --- the budget --------------------------------------------------------------------------------------


def test_budget_holds_exactly_two(start_llmhost: Start) -> None:
    """The numbers every other test relies on, measured on this build with a budget that holds all three."""
    server = serve(start_llmhost, "measure", three_models(), mib=100_000)
    for name in ("small-a", "small-b", "small-c"):
        assert admin_post(server, f"{name}/load").status_code == 200
    engines = {e["model"]: e for e in status(server)["engines"]}
    assert all(e["memory_reported"] for e in engines.values()), engines
    reported = {name: e["memory_mib"]["host"] for name, e in engines.items()}
    estimate = {name: e["estimate_mib"] for name, e in engines.items()}
    for name, e in engines.items():
        buffers = e["memory_by_buffer_mib"]
        assert sum(sum(kinds.values()) for kinds in buffers.values()) == pytest.approx(reported[name], abs=0.2)
        assert estimate[name] >= reported[name], f"{name}: the estimate must not undercount"
    names = list(engines)
    worst_pair = max(reported[x] + estimate[y] for x in names for y in names if x != y)
    best_trio = min(sum(reported[x] for x in names if x != y) + estimate[y] for y in names)
    assert worst_pair <= BUDGET_MIB < best_trio, f"reported {reported}, estimated {estimate}"


# --- eviction policy ---------------------------------------------------------------------------------


def test_eviction_lowest_priority_first_even_if_recently_used(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "priority", three_models())
    ok_chat(server, "small-b")  # priority 1, least recently used
    ok_chat(server, "small-a")  # priority 0, most recently used
    assert loaded(server) == ["small-a", "small-b"]
    victim = engine_process(server, "small-a")

    ok_chat(server, "small-c")

    assert loaded(server) == ["small-b", "small-c"]
    assert events(server) == [
        load_event("small-b"),
        load_event("small-a"),
        evicted("small-a", "small-c"),
        load_event("small-c"),
    ]
    assert not is_alive(victim), "the evicted engine is still running"
    assert len(server.engines()) == 2
    assert engine_status(server, "small-b")["evictions"] == 0


def test_eviction_least_recently_used_among_equal_priorities(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "lru", three_models(b={"priority": 0}))
    ok_chat(server, "small-a")
    ok_chat(server, "small-b")
    ok_chat(server, "small-a")  # a was loaded first but is now the most recently used

    ok_chat(server, "small-c")
    assert loaded(server) == ["small-a", "small-c"]

    ok_chat(server, "small-b")  # a (used before c) is now the least recently used
    assert loaded(server) == ["small-b", "small-c"]
    assert events(server) == [
        load_event("small-a"),
        load_event("small-b"),
        evicted("small-b", "small-c"),
        load_event("small-c"),
        evicted("small-a", "small-b"),
        load_event("small-b"),
    ]
    assert len(server.engines()) == 2


def test_pinned_models_are_never_evicted(start_llmhost: Start) -> None:
    # small-a: lowest priority, pinned through the admin API; small-c: pinned by its profile
    server = serve(start_llmhost, "pinned", three_models(c={"pinned": True}))
    ok_chat(server, "small-a")
    for wrong in ({"pinned": "yes"}, [], [True], "true"):
        response = admin_post(server, "small-a/pin", json=wrong)
        assert response.status_code == 400, wrong
        assert response.json()["error"]["param"] == "pinned"
    assert engine_status(server, "small-a")["pinned"] is False
    response = admin_post(server, "small-a/pin", json={"pinned": True})
    assert response.status_code == 200, response.text
    assert response.json() == {"model": "small-a", "pinned": True}
    assert engine_status(server, "small-a")["pinned"] is True
    ok_chat(server, "small-b")

    ok_chat(server, "small-c")  # small-a would go first by priority and LRU, but it is pinned
    assert loaded(server) == ["small-a", "small-c"]
    assert evicted("small-b", "small-c") in events(server)
    assert engine_status(server, "small-c")["pinned"] is True

    # both residents pinned: small-b cannot fit at all, and nothing is unloaded trying
    started = time.monotonic()
    response = chat(server, "small-b")
    assert time.monotonic() - started < 2
    assert response.status_code == 503, response.text
    assert "cannot fit" in response.json()["error"]["message"]
    assert loaded(server) == ["small-a", "small-c"]

    # unpinned, small-a is the one to go again
    response = admin_post(server, "small-a/pin", json={"pinned": False})
    assert response.json() == {"model": "small-a", "pinned": False}
    ok_chat(server, "small-b")
    assert loaded(server) == ["small-b", "small-c"]
    assert events(server)[-2:] == [evicted("small-a", "small-b"), load_event("small-b")]


def test_model_that_can_never_fit_fails_fast_with_the_numbers(start_llmhost: Start) -> None:
    huge = {"ctx": 8192, "parallel": 4}  # 32768 cells of KV: 720 MiB on its own
    models = {**three_models(), "small-huge": profile(**huge)}
    server = serve(start_llmhost, "never-fits", models)
    ok_chat(server, "small-a")
    meta = read_gguf_meta(model_file())
    needed = memory.estimate(meta, meta.file_size, ModelProfile(**huge)).total_mib

    started = time.monotonic()
    response = chat(server, "small-huge")
    elapsed = time.monotonic() - started

    assert elapsed < 2, f"took {elapsed:.1f} s to refuse"
    assert response.status_code == 503, response.text
    assert response.headers.get("x-should-retry") == "false"
    error = response.json()["error"]
    assert error["code"] == "insufficient_memory"
    match = re.search(r"host: needs (\d+) MiB, (\d+) MiB available", error["message"])
    assert match, error["message"]
    assert int(match[1]) == round(needed)
    assert int(match[2]) == BUDGET_MIB  # everything evictable gone: the whole budget
    assert "small-huge" in error["message"]
    # nothing was started for it and nothing was evicted for a hopeless load
    assert loaded(server) == ["small-a"]
    assert len(server.engines()) == 1
    assert events(server) == [load_event("small-a")]
    # the openai SDK does not retry it either
    with pytest.raises(openai.InternalServerError) as caught:
        openai_client(server).chat.completions.create(model="small-huge", messages=PROMPT, max_tokens=4)  # type: ignore[arg-type]
    assert caught.value.status_code == 503


def test_max_loaded_caps_engines_even_when_memory_fits(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "max-loaded", three_models(), mib=100_000, max_loaded=1)
    ok_chat(server, "small-b")
    ok_chat(server, "small-a")
    assert loaded(server) == ["small-a"]
    assert events(server)[-2:] == [evicted("small-b", "small-a"), load_event("small-a")]
    assert len(server.engines()) == 1


# --- keep-alive --------------------------------------------------------------------------------------


def test_ttl_expiry_unloads(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "ttl", three_models(a={"ttl": 2}))
    ok_chat(server, "small-a")
    finished = time.monotonic()
    engine = engine_process(server, "small-a")
    expires = engine_status(server, "small-a")["expires_in_s"]
    assert expires is not None and 0 < expires <= 2

    assert wait_for(lambda: loaded(server) == [], timeout=5), "small-a still loaded 5 s after a 2 s ttl"
    gone_after = time.monotonic() - finished
    assert gone_after >= 1.5, f"unloaded after {gone_after:.1f} s, before its 2 s ttl"
    assert events(server)[-1] == unload_event("small-a", "ttl expired")
    assert wait_for(lambda: not is_alive(engine), timeout=5)

    ok_chat(server, "small-a")  # and it loads again on demand
    assert loaded(server) == ["small-a"]


def test_keep_alive_on_the_request(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "keep-alive", three_models(b={"ttl": 1}))
    client = openai_client(server)

    # 0: unload right after the request (OpenAI SDK, extra body field)
    client.chat.completions.create(model="small-a", messages=PROMPT, max_tokens=4, extra_body={"keep_alive": 0})  # type: ignore[arg-type]
    assert wait_for(lambda: loaded(server) == [], timeout=2), f"still loaded: {loaded(server)}"
    assert events(server)[-1] == unload_event("small-a", "keep_alive 0")

    # negative: kept despite the profile's 1 s ttl; "5m": five minutes
    ok_chat(server, "small-b", keep_alive="-1")
    assert engine_status(server, "small-b")["expires_in_s"] is None
    ok_chat(server, "small-c", keep_alive="5m")
    assert 290 < engine_status(server, "small-c")["expires_in_s"] <= 300
    time.sleep(3)  # the 1 s ttl plus the reaper's period, with margin
    assert loaded(server) == ["small-b", "small-c"]

    # a request without keep_alive falls back to the profile's ttl
    ok_chat(server, "small-b")
    assert wait_for(lambda: loaded(server) == ["small-c"], timeout=4)
    assert events(server)[-1] == unload_event("small-b", "ttl expired")

    response = chat(server, "small-a", keep_alive="soon")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "keep_alive"


def test_non_finite_keep_alive_never_breaks_ps(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "keep-alive-inf", three_models())
    for value in ("inf", "nan"):
        response = chat(server, "small-a", keep_alive=value)
        assert response.status_code in (200, 400), response.text
        ps = httpx.get(f"{server.base_url}/api/ps", timeout=30)
        assert ps.status_code == 200, f"keep_alive {value!r}: /api/ps {ps.status_code} {ps.text}"
        assert status(server)["engines"] is not None


# --- admission: bounded queues -----------------------------------------------------------------------


def test_queue_full_is_429_with_retry_after(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "queue-full", three_models(), queue_size=1)
    assert admin_post(server, "small-a/load").status_code == 200
    results: dict[str, Any] = {}

    def queued() -> None:
        results["queued"] = chat(server, "small-a", max_tokens=20, ignore_eos=True)

    with stream(server, "small-a", max_tokens=200) as holder:
        first_content(holder)  # the only slot is generating
        waiter = threading.Thread(target=queued)
        waiter.start()
        assert wait_for(lambda: engine_status(server, "small-a")["queued"] == 1, timeout=5)

        started = time.monotonic()
        with pytest.raises(openai.RateLimitError) as caught:
            openai_client(server).chat.completions.create(model="small-a", messages=PROMPT, max_tokens=4)  # type: ignore[arg-type]
        assert time.monotonic() - started < 1, "a full queue must refuse at once"
        assert int(caught.value.response.headers["retry-after"]) >= 1
        assert caught.value.code == "queue_full"

        finish, tokens, done = read_to_end(holder)
    waiter.join(60)
    assert (finish, tokens, done) == ("length", 200, True)
    response = results["queued"]
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 20
    assert engine_status(server, "small-a")["queued"] == 0


def test_queue_timeout_is_503_with_retry_after(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "queue-timeout", three_models(), queue_timeout=1)
    assert admin_post(server, "small-a/load").status_code == 200
    with stream(server, "small-a", max_tokens=1000) as holder:
        first_content(holder)
        started = time.monotonic()
        response = chat(server, "small-a")
        waited = time.monotonic() - started
    assert 0.9 <= waited < 3, f"waited {waited:.1f} s with a 1 s queue timeout"
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers.get("x-should-retry") != "false"
    assert response.json()["error"]["code"] == "queue_timeout"
    # the holder disconnected: the slot frees, the queue is empty, and the model serves again
    assert wait_for(lambda: engine_status(server, "small-a")["slots_busy"] == 0, timeout=10)
    assert engine_status(server, "small-a")["queued"] == 0
    ok_chat(server, "small-a")


# --- loading and unloading ---------------------------------------------------------------------------


def test_concurrent_first_requests_to_two_models_load_each_once(start_llmhost: Start) -> None:
    # two slots each, so requests to one model race into loading instead of queueing one by one
    # (not 3: this llama-server build aborts with --embeddings and a slot count that is not a power of two)
    server = serve(start_llmhost, "concurrent-load", three_models(a={"parallel": 2}, c={"parallel": 2}))
    models = ["small-a", "small-c"] * 3
    barrier = threading.Barrier(len(models))
    codes: list[int] = []

    def request(model: str) -> None:
        barrier.wait()
        codes.append(chat(server, model).status_code)

    threads = [threading.Thread(target=request, args=(model,)) for model in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert codes == [200] * len(models)
    assert loaded(server) == ["small-a", "small-c"]
    assert len(server.engines()) == 2
    assert sorted(e["model"] for e in events(server) if e["event"] == "load") == ["small-a", "small-c"]
    assert not [e for e in events(server) if e["event"] == "unload"]
    # one llama-server started per model: the racing requests joined the first one's load
    started = re.findall(r"starting engine\s+model=(\S+)", server.log())
    assert sorted(started) == ["small-a", "small-c"], server.log_tail()


def test_unload_during_a_stream_waits_for_it(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "unload-stream", three_models())
    result: dict[str, Any] = {}

    def unload() -> None:
        result["response"] = admin_post(server, "small-a/unload")
        result["returned"] = time.monotonic()

    with stream(server, "small-a", max_tokens=100) as lines:
        first_content(lines)
        engine = engine_process(server, "small-a")
        unloader = threading.Thread(target=unload)
        unloader.start()
        time.sleep(0.3)
        assert unloader.is_alive(), "unload returned while a stream was in flight"
        assert engine_status(server, "small-a")["slots_busy"] == 1
        finish, tokens, done = read_to_end(lines)
        finished = time.monotonic()
    unloader.join(30)
    assert (finish, tokens, done) == ("length", 100, True)
    assert result["response"].status_code == 200
    assert result["response"].json() == {"model": "small-a", "unloaded": True, "state": "stopped"}
    assert result["returned"] >= finished - 0.05, "unload returned before the stream finished"
    assert loaded(server) == []
    assert not is_alive(engine)
    assert events(server)[-1] == unload_event("small-a", "requested")
    # unloading what is not loaded says so
    assert admin_post(server, "small-a/unload").json()["unloaded"] is False


# A second unload of a draining slot must wait for the first (regression: it once returned at once, so a
# second ``unload`` answered "unloaded" while the engine still served, and ``_make_room`` started the new
# engine next to the one it meant to evict).


def test_second_unload_during_a_drain_also_waits(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "unload-twice", three_models())
    with stream(server, "small-a", max_tokens=100) as lines:
        first_content(lines)
        unloader = threading.Thread(target=admin_post, args=(server, "small-a/unload"))
        unloader.start()
        time.sleep(0.3)  # the first unload is draining
        started = time.monotonic()
        second = admin_post(server, "small-a/unload")
        took = time.monotonic() - started
        assert read_to_end(lines) == ("length", 100, True)
    unloader.join(30)
    assert second.json() == {"model": "small-a", "unloaded": True, "state": "stopped"}
    assert loaded(server) == []
    # about 1.5 s of the stream were left: "unloaded" may only come once the engine is gone
    assert took > 0.5, f"the second unload answered after {took:.2f} s, while the stream still ran"


def test_eviction_of_a_draining_engine_waits_for_it(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "evict-draining", three_models(b={"pinned": True}))
    ok_chat(server, "small-b")  # pinned: only small-a can make room for small-c
    processes: list[int] = []
    result: dict[str, Any] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            processes.append(len(server.engines()))
            time.sleep(0.02)

    def request_c() -> None:
        result["c"] = chat(server, "small-c")

    sampler = threading.Thread(target=sample)
    loader = threading.Thread(target=request_c)
    with stream(server, "small-a", max_tokens=200) as lines:
        first_content(lines)
        unloader = threading.Thread(target=admin_post, args=(server, "small-a/unload"))
        unloader.start()
        time.sleep(0.3)  # small-a is draining; its stream runs on
        sampler.start()
        loader.start()
        assert read_to_end(lines) == ("length", 200, True)
    loader.join(60)
    unloader.join(30)
    stop.set()
    sampler.join(10)
    assert result["c"].status_code == 200, result["c"].text
    assert loaded(server) == ["small-b", "small-c"]
    assert max(processes) <= 2, f"{max(processes)} llama-server processes at once on memory for two"


# --- done when: three models, memory for two, several clients ---------------------------------------


def replay(history: list[dict[str, Any]], room: int) -> None:
    """The events tell a consistent story: at most ``room`` loaded, each eviction makes room for the load
    that follows it, and only loaded models are unloaded."""
    resident: set[str] = set()
    making_room_for: str | None = None
    for event in history:
        model = event["model"]
        if event["event"] == "load":
            assert making_room_for in (None, model), f"evicted for {making_room_for}, then loaded {model}"
            assert model not in resident
            resident.add(model)
            assert len(resident) <= room, f"{sorted(resident)} loaded at once"
            making_room_for = None
        else:
            assert model in resident, f"unloaded {model}, which was not loaded"
            resident.remove(model)
            reason = event["reason"]
            assert reason.startswith("evicted to make room for "), reason
            making_room_for = reason.removeprefix("evicted to make room for ")


def test_mixed_workload_on_memory_for_two(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "done-when", three_models())
    names = ["small-a", "small-b", "small-c"]
    orders = [names[i:] + names[:i] for i in range(3)]
    barrier = threading.Barrier(len(orders))
    codes: list[int] = []
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def client(order: list[str]) -> None:
        barrier.wait()
        for model in order * 2:
            response = chat(server, model, max_tokens=8)
            codes.append(response.status_code)
            assert response.status_code == 200, response.text

    def sample() -> None:
        while not stop.is_set():
            samples.append((len(status(server)["engines"]), len(server.engines())))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    clients = [threading.Thread(target=client, args=(order,)) for order in orders]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(120)
    stop.set()
    sampler.join(10)

    assert codes == [200] * 18
    assert len(samples) > 10
    assert max(reported for reported, _ in samples) <= 2, "more than two engines listed at once"
    assert max(processes for _, processes in samples) <= 2, "more than two llama-server processes at once"
    history = events(server)
    replay(history, room=2)
    evictions = [e for e in history if e["event"] == "unload"]
    assert evictions, "three models on memory for two never evicted anything"
    per_model = {e["model"]: e["evictions"] for e in status(server)["engines"]}
    for model, count in per_model.items():
        assert count == sum(e["model"] == model for e in evictions)

    # then a sequence the policy predicts exactly: b (priority 1) outlives a more recently used a
    for model in loaded(server):
        assert admin_post(server, f"{model}/unload").json()["unloaded"] is True
    ok_chat(server, "small-b")
    ok_chat(server, "small-a")
    ok_chat(server, "small-c")
    ps = run_cli("ps", "--url", server.base_url)
    assert ps.returncode == 0, ps.stderr
    assert "unload small-a (evicted to make room for small-c)" in ps.stdout
    table = ps.stdout.split("capacity:")[0]
    assert "small-b" in table and "small-c" in table and "small-a" not in table, ps.stdout


# --- the CLI -----------------------------------------------------------------------------------------


def test_cli_ps_load_unload(start_llmhost: Start) -> None:
    server = serve(start_llmhost, "cli", three_models())
    url = ("--url", server.base_url)
    for name in ("small-b", "small-a", "small-c"):
        result = run_cli("load", name, *url)
        assert result.returncode == 0, result.stderr
        assert re.search(rf"{name}: ready \(pid \d+, port \d+\)", result.stdout), result.stdout
    assert loaded(server) == ["small-b", "small-c"]

    ps = run_cli("ps", *url)
    assert ps.returncode == 0, ps.stderr
    table, _, tail = ps.stdout.partition("capacity:")
    rows = [line for line in table.splitlines() if "small-" in line]
    assert len(rows) == 2, table
    assert any("small-b" in row and "ready" in row for row in rows), table
    assert any("small-c" in row and "ready" in row for row in rows), table
    assert f"host {BUDGET_MIB} MiB" in tail
    assert "unload small-a (evicted to make room for small-c)" in tail

    result = run_cli("unload", "small-b", *url)
    assert result.returncode == 0, result.stderr
    assert "small-b: unloaded" in result.stdout
    assert loaded(server) == ["small-c"]
    result = run_cli("unload", "small-b", *url)
    assert result.returncode == 0, result.stderr
    assert "small-b: was not loaded" in result.stdout

    result = run_cli("load", "no-such-model", *url)
    assert result.returncode == 1
    assert "no-such-model" in result.stderr

    result = run_cli("ps", "--url", "http://127.0.0.1:1")
    assert result.returncode == 1
    assert "cannot reach llmhost" in result.stderr


def test_engines_without_a_thread_count_share_the_cores(start_llmhost: Start) -> None:
    """No max_loaded, threads unset: the first engine takes every core; when a second loads beside it, each gets its
    share and the first restarts once idle, so that together they never run more threads than there are cores."""
    from llmhost.engines.llamaserver import cpu_cores

    cores = cpu_cores()
    server = serve(start_llmhost, "share", three_models(a={"threads": None}, b={"threads": None}))

    def threads(model: str) -> int:
        argv = engine_status(server, model)["argv"]
        return int(argv[argv.index("--threads") + 1]) if argv else 0

    ok_chat(server, "small-a", max_tokens=2)
    assert threads("small-a") == cores
    ok_chat(server, "small-b", max_tokens=2)
    assert threads("small-b") == max(1, cores // 2)
    assert wait_for(lambda: threads("small-a") == max(1, cores // 2), timeout=30), events(server)
    ok_chat(server, "small-a", max_tokens=2)
    restarted = [e for e in events(server) if e["event"] == "unload" and e["model"] == "small-a"]
    assert len(restarted) == (1 if cores >= 2 else 0)
    assert threads("small-a") + threads("small-b") <= max(cores, 2)
