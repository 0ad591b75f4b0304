"""TelemetrySampler with a real thread, real psutil and the no-GPU backend, at a short interval."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from llmhost.telemetry.gpu import NoGpu
from llmhost.telemetry.host import HostProbe
from llmhost.telemetry.sampler import TelemetrySample, TelemetrySampler

INTERVAL = 0.05


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def make_sampler(tmp_path: Path) -> Iterator[Callable[..., TelemetrySampler]]:
    samplers: list[TelemetrySampler] = []

    def make(**options: object) -> TelemetrySampler:
        sampler = TelemetrySampler(NoGpu(), HostProbe(tmp_path), interval=INTERVAL, **options)  # type: ignore[arg-type]
        samplers.append(sampler)
        return sampler

    yield make
    for sampler in samplers:
        sampler.stop()


def test_samples_in_the_background_until_stopped(make_sampler: Callable[..., TelemetrySampler]) -> None:
    sampler = make_sampler()
    assert sampler.latest() is None

    sampler.start()
    wait_until(lambda: len(sampler.history()) >= 3)
    sampler.stop()

    assert not sampler.running
    history = sampler.history()
    assert [sample.ts for sample in history] == sorted(sample.ts for sample in history)
    assert sampler.latest() == history[-1]
    assert history[-1].gpus == ()
    assert history[-1].host.cpu_percent is not None  # primed by the first sample on the sampler thread
    count = len(history)
    time.sleep(3 * INTERVAL)
    assert len(sampler.history()) == count


def test_history_is_bounded_and_filterable(make_sampler: Callable[..., TelemetrySampler]) -> None:
    sampler = make_sampler(history=4 * INTERVAL)
    seen: list[TelemetrySample] = []
    sampler.on_sample = seen.append

    sampler.start()
    wait_until(lambda: len(seen) >= 8)
    sampler.stop()

    history = sampler.history()
    assert len(history) == 4
    assert history == seen[-4:]
    assert sampler.history(since=history[2].ts) == history[2:]


def test_the_hook_runs_on_the_sampler_thread_and_cannot_stop_it(make_sampler: Callable[..., TelemetrySampler]) -> None:
    threads: list[str] = []

    def failing_hook(sample: TelemetrySample) -> None:
        threads.append(threading.current_thread().name)
        raise RuntimeError("a broken store")

    sampler = make_sampler(on_sample=failing_hook)
    with capture_logs() as logs:
        sampler.start()
        wait_until(lambda: len(threads) >= 3)

    assert sampler.running
    assert set(threads) == {"llmhost-telemetry"}
    assert any(entry["event"] == "telemetry sample failed" for entry in logs)


def test_reports_on_the_processes_it_is_given(make_sampler: Callable[..., TelemetrySampler]) -> None:
    sampler = make_sampler()
    sampler.set_processes({"this-test": os.getpid()})

    sample = sampler.sample_now()

    assert [(process.name, process.pid) for process in sample.host.processes] == [("this-test", os.getpid())]
    assert sampler.latest() == sample


def test_restarts_after_a_stop(make_sampler: Callable[..., TelemetrySampler]) -> None:
    sampler = make_sampler()
    sampler.start()
    sampler.start()  # already running: no second thread
    assert [thread.name for thread in threading.enumerate()].count("llmhost-telemetry") == 1
    sampler.stop()

    count = len(sampler.history())
    sampler.start()
    wait_until(lambda: len(sampler.history()) > count)
    assert sampler.running
