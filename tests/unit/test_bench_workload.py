"""Length distributions (genai-bench notation), load levels and Poisson arrivals."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llmhost.bench.corpus import TEXT, excerpt
from llmhost.bench.workload import LengthSpec, Level, poisson_offsets


def test_deterministic_lengths() -> None:
    spec = LengthSpec.parse("D(128, 64)")
    assert spec == LengthSpec.fixed(128, 64)
    assert str(spec) == "D(128,64)"
    assert spec.sample(np.random.default_rng(0), 3) == [(128, 64)] * 3
    assert spec.context_need() == 192


def test_uniform_lengths_stay_in_range() -> None:
    spec = LengthSpec.parse("U(10,20)/(5,6)")
    pairs = spec.sample(np.random.default_rng(1), 500)
    assert {i for i, _ in pairs} == set(range(10, 21))
    assert {o for _, o in pairs} == {5, 6}
    assert spec.context_need() == 26
    assert LengthSpec.parse("U(100,50)") == LengthSpec("U", (1, 100), (1, 50))


def test_normal_lengths_are_clipped() -> None:
    spec = LengthSpec.parse("N(480,240)/(300,150)")
    pairs = spec.sample(np.random.default_rng(2), 2000)
    inputs = [i for i, _ in pairs]
    assert min(inputs) >= 1 and max(inputs) <= 480 + 3 * 240
    assert abs(np.mean(inputs) - 480) < 30
    assert spec.context_need() == 1200 + 750
    assert str(spec) == "N(480,240)/(300,150)"


def test_sampling_is_seeded() -> None:
    spec = LengthSpec.parse("N(100,30)/(50,10)")
    assert spec.sample(np.random.default_rng(5), 10) == spec.sample(np.random.default_rng(5), 10)


@pytest.mark.parametrize("text", ["D(1)", "X(1,2)", "D(1,2)/(3,4)", "N(1,2)", "U(5,1)/(1,2)", "D(a,b)", "D(0,5)"])
def test_bad_notation_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        LengthSpec.parse(text)


def test_levels() -> None:
    closed, opened = Level(concurrency=4), Level(rate=1.5, max_concurrency=8)
    assert (closed.kind, closed.value, closed.label, closed.peak_in_flight) == ("concurrency", 4.0, "c=4", 4)
    assert (opened.kind, opened.value, opened.label, opened.peak_in_flight) == ("rate", 1.5, "1.5 req/s max 8", 8)
    assert Level.from_dict(opened.to_dict()) == opened
    for bad in ({}, {"concurrency": 1, "rate": 1.0}, {"concurrency": 0}, {"rate": -1.0}):
        with pytest.raises(ValueError):
            Level(**bad)


def test_poisson_offsets() -> None:
    offsets = poisson_offsets(4.0, 4001, np.random.default_rng(3))
    assert offsets[0] == 0.0 and len(offsets) == 4001
    assert all(b >= a for a, b in itertools.pairwise(offsets))
    assert offsets[-1] / 4000 == pytest.approx(0.25, rel=0.05)  # mean gap 1 / rate
    assert poisson_offsets(1.0, 1, np.random.default_rng(0)) == [0.0]


def test_corpus_excerpts_start_at_a_word_and_wrap() -> None:
    piece = excerpt(5, 100)
    assert len(piece) == 100 and not piece.startswith(" ")
    assert TEXT.find(piece[:30]) >= 0
    assert len(excerpt(len(TEXT) - 3, 3 * len(TEXT))) == 3 * len(TEXT)
