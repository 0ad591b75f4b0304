"""HostProbe on this machine, for real: psutil readings, a real child process, a real directory."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from llmhost.telemetry.host import HostProbe, HostSample

MIB = 1024 * 1024
BUSY_CHILD = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A real process that burns CPU; killed by its pid afterwards."""
    process = subprocess.Popen([sys.executable, "-c", BUSY_CHILD])
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def test_first_sample_has_no_cpu_figure_then_a_measured_one(tmp_path: Path) -> None:
    probe = HostProbe(tmp_path)

    first = probe.sample()
    time.sleep(0.1)
    second = probe.sample()

    assert first.cpu_percent is None and first.cpu_percent_per_core is None  # psutil's first 0.0 means nothing
    assert second.cpu_percent is not None and 0.0 <= second.cpu_percent <= 100.0
    assert second.cpu_percent_per_core is not None
    assert len(second.cpu_percent_per_core) == psutil.cpu_count()


def test_cpu_is_primed_per_thread(tmp_path: Path) -> None:
    probe = HostProbe(tmp_path)
    probe.sample()
    results: list[HostSample] = []

    thread = threading.Thread(target=lambda: results.append(probe.sample()))
    thread.start()
    thread.join()

    assert results[0].cpu_percent is None


def test_memory_swap_and_load_match_psutil(tmp_path: Path) -> None:
    sample = HostProbe(tmp_path).sample()

    memory = psutil.virtual_memory()
    assert sample.memory_total_mib == memory.total / MIB
    assert 0 < sample.memory_available_mib <= sample.memory_total_mib
    assert 0 < sample.memory_used_mib <= sample.memory_total_mib
    assert sample.swap_total_mib == psutil.swap_memory().total / MIB
    assert 0 <= sample.swap_used_mib <= sample.swap_total_mib
    assert sample.load_average is not None and len(sample.load_average) == 3  # Linux has one


def test_disk_usage_of_the_data_dir_even_before_it_exists(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet"

    disk = HostProbe(data_dir).sample().disk

    usage = psutil.disk_usage(str(tmp_path))
    assert disk is not None
    assert disk.path == str(data_dir)
    assert disk.total_mib == usage.total / MIB
    assert 0 < disk.free_mib <= disk.total_mib


def test_engine_processes_rss_and_cpu(tmp_path: Path, child: subprocess.Popen[bytes]) -> None:
    probe = HostProbe(tmp_path)
    engines = {"busy-model": child.pid}

    first = probe.sample(engines)
    time.sleep(0.3)
    second = probe.sample(engines)

    (process,) = first.processes
    assert (process.name, process.pid) == ("busy-model", child.pid)
    assert process.rss_mib is not None and process.rss_mib > 0
    assert process.cpu_percent is None  # no interval yet
    (busy,) = second.processes
    assert busy.cpu_percent is not None and busy.cpu_percent > 10  # a busy loop: most of one core


def test_a_process_that_exits_is_left_out(tmp_path: Path, child: subprocess.Popen[bytes]) -> None:
    probe = HostProbe(tmp_path)
    probe.sample({"gone": child.pid})

    child.kill()
    child.wait(timeout=10)

    assert probe.sample({"gone": child.pid}).processes == ()
