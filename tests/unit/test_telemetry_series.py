"""Telemetry as labelled points, and the path from the sampler thread into the store."""

from __future__ import annotations

import json
import time
from pathlib import Path

from llmhost.telemetry.gpu import NoGpu
from llmhost.telemetry.host import HostProbe
from llmhost.telemetry.sampler import TelemetrySample, TelemetrySampler
from llmhost.telemetry.scrape import EngineRates, parse_engine_stats
from llmhost.telemetry.series import HELP, Point, engine_points, labels_key, telemetry_points
from llmhost.telemetry.store import TelemetryStore


def test_labels_key_is_stable_and_parseable() -> None:
    key = labels_key({"name": 'RTX "3090", rev 2', "gpu": "0"})

    assert key == labels_key({"gpu": "0", "name": 'RTX "3090", rev 2'})
    assert json.loads(key) == {"gpu": "0", "name": 'RTX "3090", rev 2'}
    assert Point("s", (("gpu", "0"),), 1.0).key == '{"gpu":"0"}'


def test_engine_points_leave_out_what_was_not_measured() -> None:
    stats = parse_engine_stats("llamacpp:requests_processing 1\n", [{"id": 0, "is_processing": True}], scraped_at=0.0)
    rates = EngineRates(2.0, None, 40.0, 0.0, 20.0)

    without_rates = {point.series: point.value for point in engine_points("smol", stats, None)}
    with_rates = {point.series: point.value for point in engine_points("smol", stats, rates)}

    assert without_rates == {"engine_requests_processing": 1.0, "engine_busy_slots": 1.0}
    assert with_rates == {
        **without_rates,
        "engine_generation_tokens_per_second": 40.0,
        "engine_prompt_throughput_tokens_per_second": 0.0,
        "engine_generation_throughput_tokens_per_second": 20.0,
    }
    assert all(point.labels == (("model", "smol"),) for point in engine_points("smol", stats, rates))


def test_every_series_has_help(tmp_path: Path) -> None:
    probe = HostProbe(tmp_path)
    probe.sample()
    sample = TelemetrySample(time.time(), (), probe.sample())
    stats = parse_engine_stats(None, [], scraped_at=0.0)

    names = {point.series for point in telemetry_points(sample)}
    names |= {point.series for point in engine_points("m", stats, EngineRates(1.0, 1.0, 1.0, 1.0, 1.0))}

    assert names <= set(HELP)


def test_sampler_thread_writes_history_into_the_store(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "telemetry.db")
    sampler = TelemetrySampler(
        NoGpu(),
        HostProbe(tmp_path),
        interval=0.05,
        on_sample=lambda sample: store.add_points(sample.ts, telemetry_points(sample)),
    )
    started = time.time()
    try:
        sampler.start()
        deadline = time.monotonic() + 5
        while len(sampler.history()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        sampler.stop()

        history = store.series("host_memory_available_bytes", since=started, now=time.time())
        (line,) = history.lines
        assert line.labels == {}
        assert len(line.points) == len(sampler.history())
        assert [point.ts for point in line.points] == [sample.ts for sample in sampler.history()]
    finally:
        sampler.stop()
        store.close()
