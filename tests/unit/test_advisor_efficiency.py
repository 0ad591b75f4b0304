"""Measured efficiency: watts per token/s (joules per token) from NVML power and measured tok/s, cost per
million tokens at the user's price, and "not measured" (with the reason) whenever a figure is missing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_advisor_rigs import facts, model

from llmhost.advisor.facts import Generation, PowerReading
from llmhost.advisor.report import build
from llmhost.config import AdvisorSettings, ApiPrice

PRICES = AdvisorSettings(
    electricity_price_per_kwh=0.30, currency="EUR", api_prices={"hosted": ApiPrice(input_per_m=0.15, output_per_m=0.6)}
)


def served(speeds: list[float], started_at: float = 99.0, duration_s: float = 10.0) -> tuple[Generation, ...]:
    return tuple(Generation(started_at, duration_s, 20, 100, speed) for speed in speeds)


def test_power_during_generation_over_the_median_speed() -> None:
    m = replace(
        model(ctx=4096, loaded=True, charges={"gpu0": 5000.0}, split_mode="none", main_gpu=0),
        generations=served([40.0, 60.0, 50.0]),
    )
    history = (
        PowerReading(100.0, {0: 300.0, 1: 30.0}),  # during the requests (99 .. 109)
        PowerReading(105.0, {0: 280.0, 1: 30.0}),
        PowerReading(200.0, {0: 30.0, 1: 30.0}),  # idle afterwards: not counted
    )
    body = build(replace(facts("2x24gb", m, measured=True), settings=PRICES, power_history=history)).to_dict()
    (row,) = body["efficiency"]["models"]
    # GPU 0 only (the engine's report): mean(300, 280) = 290 W; median(40, 50, 60) = 50 tok/s
    assert (row["gpus"], row["gpus_from"], row["power_w"], row["power_basis"]) == (
        [0],
        "engine",
        290.0,
        "during generation",
    )
    assert row["tokens_per_second"] == 50.0 and row["requests"] == 3
    # 290 / 50 = 5.8 J per token; x 1e6 / 3.6e6 = 1.6111 kWh per million; x 0.30 EUR = 0.48333 EUR per million
    assert row["joules_per_token"] == pytest.approx(5.8)
    assert row["kwh_per_million_tokens"] == pytest.approx(5.8 / 3.6)
    assert row["cost_per_million_tokens"] == pytest.approx(5.8 / 3.6 * 0.30)
    assert row["not_measured"] is None
    assert body["efficiency"]["api_prices"] == [{"name": "hosted", "input_per_m": 0.15, "output_per_m": 0.6}]
    assert body["efficiency"]["currency"] == "EUR"


def test_without_samples_during_generation_the_latest_one_counts_for_every_gpu_of_the_model() -> None:
    m = replace(model(ctx=4096, loaded=True), generations=served([25.0], started_at=0.0, duration_s=1.0))
    history = (PowerReading(50.0, {0: 100.0, 1: 120.0}), PowerReading(60.0, {0: 110.0, 1: 90.0}))
    body = build(replace(facts("2x24gb", m, measured=True), settings=PRICES, power_history=history)).to_dict()
    (row,) = body["efficiency"]["models"]
    # configured over both GPUs (no engine report): 110 + 90 = 200 W at 25 tok/s = 8 J per token
    assert (row["gpus"], row["gpus_from"], row["power_w"], row["power_basis"]) == (
        [0, 1],
        "config",
        200.0,
        "latest sample",
    )
    assert row["joules_per_token"] == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("rig", "measured", "speeds", "power", "reason"),
    [
        ("2x24gb", False, [50.0], True, "needs the running service"),
        ("none", True, [50.0], True, "runs on the CPU"),
        ("2x24gb", True, [], True, "no finished request"),
        ("2x24gb", True, [50.0], False, "does not report its power"),
    ],
)
def test_not_measured_says_why(rig: str, measured: bool, speeds: list[float], power: bool, reason: str) -> None:
    m = replace(model(ctx=4096, loaded=measured), generations=served(speeds))
    history = (PowerReading(100.0, {0: 300.0, 1: 300.0} if power else {}),)
    body = build(replace(facts(rig, m, measured=measured), settings=PRICES, power_history=history)).to_dict()
    (row,) = body["efficiency"]["models"]
    assert reason in row["not_measured"]
    assert row["joules_per_token"] is None and row["cost_per_million_tokens"] is None


def test_measured_without_a_price_gives_energy_but_no_cost() -> None:
    m = replace(model(ctx=4096, loaded=True), generations=served([50.0]))
    history = (PowerReading(100.0, {0: 100.0, 1: 100.0}),)
    body = build(replace(facts("2x24gb", m, measured=True), power_history=history)).to_dict()
    (row,) = body["efficiency"]["models"]
    assert row["joules_per_token"] == pytest.approx(4.0) and row["cost_per_million_tokens"] is None
    assert "electricity_price_per_kwh" in row["not_measured"]


def test_models_sharing_a_gpu_are_named() -> None:
    a = model("a", ctx=4096, loaded=True, charges={"gpu0": 1000.0})
    b = model("b", ctx=4096, loaded=True, charges={"gpu0": 1000.0})
    body = build(facts("2x24gb", a, b, measured=True)).to_dict()
    assert [row["shared_with"] for row in body["efficiency"]["models"]] == [["b"], ["a"]]
