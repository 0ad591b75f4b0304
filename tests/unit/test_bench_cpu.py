"""The share of the machine other processes took during a benchmark."""

from __future__ import annotations

import os

import psutil
import pytest

from llmhost.bench.cpu import CpuSample, other_share, sample


def test_other_share_subtracts_the_watched_processes() -> None:
    cores = psutil.cpu_count() or 1
    before = CpuSample(wall=10.0, busy=100.0, ours=5.0)
    after = CpuSample(wall=12.0, busy=100.0 + cores * 1.0, ours=5.0 + 0.5 * cores)  # half of it was ours
    assert other_share(before, after) == pytest.approx(0.25)
    assert other_share(before, CpuSample(12.0, 100.0, 9.0)) == 0.0  # never negative
    assert other_share(before, before) == 0.0


def test_sample_reads_this_process() -> None:
    first = sample([os.getpid(), 999_999_999])  # a pid that does not exist counts as nothing
    sum(i * i for i in range(200_000))
    second = sample([os.getpid()])
    assert second.wall > first.wall and second.ours >= first.ours
    assert 0.0 <= other_share(first, second) <= 1.0
