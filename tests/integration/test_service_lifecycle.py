"""Whole-service lifecycle: first load shared by concurrent requests, shutdown, crash of the service itself."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable

import httpx
import openai
import psutil
import pytest

from conftest import DEFAULT_MODEL, LlmhostServer, engine_binary, free_port, model_file, wait_dead

pytestmark = pytest.mark.integration

StartServer = Callable[..., LlmhostServer]
# uvicorn shuts down gracefully, then re-raises the captured signal, so a clean stop ends "killed by SIGTERM".
CLEAN_EXIT = (0, -signal.SIGTERM)


def chat(server: LlmhostServer, content: str = "hi") -> str:
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="test", max_retries=0, timeout=120) as client:
        completion = client.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": content}], max_tokens=8, temperature=0
        )
    text = completion.choices[0].message.content
    assert text
    return text


async def test_concurrent_first_requests_share_one_load(start_llmhost: StartServer) -> None:
    server = start_llmhost("concurrent")
    assert server.engines() == [], "the engine must start on the first request, not at service start"
    client = openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key="test", max_retries=0, timeout=120)
    try:
        results = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model=DEFAULT_MODEL,
                    messages=[{"role": "user", "content": f"Say the number {i}."}],
                    max_tokens=8,
                    temperature=0,
                )
                for i in range(4)
            ),
            return_exceptions=True,
        )
    finally:
        await client.close()
    failures = [result for result in results if isinstance(result, BaseException)]
    assert not failures, failures
    for result in results:
        assert isinstance(result, openai.types.chat.ChatCompletion)
        assert result.choices[0].message.content
    engines = server.engines()
    assert len(engines) == 1, f"llama-server children: {[e.pid for e in engines]}"
    assert server.log().count("starting engine") == 1, server.log_tail()


def test_sigterm_stops_the_engine_before_exit(start_llmhost: StartServer) -> None:
    server = start_llmhost("sigterm")
    chat(server)
    engine = server.engine()
    pid_file = server.run_dir / f"engine-{engine.pid}.json"
    assert pid_file.is_file(), f"no pid file for the engine in {server.run_dir}"
    started = time.monotonic()
    code = server.stop(signal.SIGTERM)
    assert code in CLEAN_EXIT, server.log_tail()
    assert time.monotonic() - started < 15
    assert not wait_dead([engine], timeout=1), "llama-server survived a SIGTERM of the service"
    # The service stopped the engine itself (it removed the pid file); PDEATHSIG was not needed.
    assert not pid_file.exists(), "the engine was not stopped by the service (its pid file is still there)"
    assert "ignored SIGTERM" not in server.log()


def test_sigterm_during_a_stream_still_exits(start_llmhost: StartServer) -> None:
    server = start_llmhost("sigterm-stream")
    chat(server)
    engine = server.engine()
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="test", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "Tell a long story."}],
        max_tokens=2000,
        temperature=0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    chunks = iter(stream)
    for _ in range(3):
        next(chunks)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    with pytest.raises((openai.APIError, openai.APIConnectionError)):
        for _ in chunks:
            pass
    code = server.stop(timeout=30)
    assert code in CLEAN_EXIT, server.log_tail()
    assert time.monotonic() - started < 25
    assert not wait_dead([engine], timeout=2)
    client.close()


def _pid_record(proc: psutil.Process, argv: list[str], create_time: float) -> str:
    # The record format of llmhost.engines.process.ChildProcess._write_pid_file.
    return json.dumps({"pid": proc.pid, "name": DEFAULT_MODEL, "argv": argv, "create_time": create_time})


def test_sigkill_of_the_service_kills_the_engine_and_restart_reaps_orphans(
    start_llmhost: StartServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = start_llmhost("crashed")
    chat(first)
    engine = first.engine()
    assert (first.run_dir / f"engine-{engine.pid}.json").is_file()

    first.stop(signal.SIGKILL)
    assert not wait_dead([engine], timeout=5), "llama-server outlived a SIGKILLed service (no PDEATHSIG?)"
    stale = first.run_dir / f"engine-{engine.pid}.json"
    assert stale.is_file(), "a SIGKILLed service cannot have cleaned up; the orphan path is not exercised"

    # An engine that survived an earlier crash (as if PDEATHSIG had not fired), and two live processes
    # whose pid files no longer describe them (pid reuse): only the first may be killed.
    binary = str(engine_binary())
    orphan_argv = [binary, "--model", str(model_file()), "--host", "127.0.0.1", "--port", str(free_port()),
                   "--ctx-size", "512", "--threads", "1", "--no-webui", "--no-repack"]  # fmt: skip
    orphan = subprocess.Popen(orphan_argv, start_new_session=True, stderr=subprocess.DEVNULL)
    reused_time = subprocess.Popen(["sleep", "120"], start_new_session=True)
    reused_argv = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        orphan_proc = psutil.Process(orphan.pid)
        time_proc = psutil.Process(reused_time.pid)
        argv_proc = psutil.Process(reused_argv.pid)
        run_dir = first.run_dir
        (run_dir / f"engine-{orphan.pid}.json").write_text(
            _pid_record(orphan_proc, orphan_argv, orphan_proc.create_time())
        )
        (run_dir / f"engine-{reused_time.pid}.json").write_text(
            _pid_record(time_proc, ["sleep", "120"], time_proc.create_time() - 3600)
        )
        (run_dir / f"engine-{reused_argv.pid}.json").write_text(
            _pid_record(argv_proc, [binary, "--model", "x"], argv_proc.create_time())
        )

        second = start_llmhost("restarted", data_dir=first.data_dir)
        assert orphan.wait(timeout=10) == -signal.SIGKILL, "the orphaned engine was not reaped at startup"
        assert reused_time.poll() is None, "an unrelated process (pid reused, other start time) was killed"
        assert reused_argv.poll() is None, "an unrelated process (pid reused, other argv) was killed"
        assert not stale.exists()
        assert sorted(run_dir.glob("engine-*.json")) == [], "stale pid files were left behind"

        chat(second)
        new_engine = second.engine()
        assert (run_dir / f"engine-{new_engine.pid}.json").is_file()
    finally:
        for proc in (orphan, reused_time, reused_argv):
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def test_an_open_dashboard_stream_does_not_hold_up_shutdown(start_llmhost: StartServer) -> None:
    """/api/events never ends by itself; a SIGTERM must end it at once instead of waiting out the grace period."""
    server = start_llmhost("sse")
    with httpx.stream("GET", f"{server.base_url}/api/events", timeout=30) as events:
        lines = events.iter_lines()
        assert next(lines).startswith("data: ")
        started = time.monotonic()
        assert server.stop(timeout=20) in CLEAN_EXIT
        assert time.monotonic() - started < 5
        assert not any(line.startswith("data: ") and "error" in line for line in lines)


def test_a_browser_at_the_root_is_sent_to_the_dashboard(server: LlmhostServer) -> None:
    page = httpx.get(f"{server.base_url}/", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 307 and page.headers["location"] == "/ui/"
    assert httpx.get(f"{server.base_url}/").text == "Ollama is running"  # what Ollama clients probe
