"""Ollama-style durations for keep_alive and ttl."""

from __future__ import annotations

import pytest

from llmhost.durations import parse_duration
from llmhost.types import InvalidRequest


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1h", 3600.0),
        ("90s", 90.0),
        ("300ms", 0.3),
        ("1.5h", 5400.0),
        ("2m30s", 150.0),
        ("-1", -1.0),
        ("-5m", -300.0),
        ("0", 0.0),
        ("10", 10.0),
        (" 10 ", 10.0),
        ("2.5", 2.5),
        (0, 0.0),
        (10, 10.0),
        (2.5, 2.5),
        (-1, -1.0),
    ],
)
def test_valid_durations(value: object, seconds: float) -> None:
    result = parse_duration(value)
    assert isinstance(result, float)
    assert result == pytest.approx(seconds)


def test_absent_is_none() -> None:
    assert parse_duration(None) is None


@pytest.mark.parametrize(
    "value", ["", " ", "soon", "5x", "m5", "5m3", "1h 30m", "5 m", "h", "ms", "5mm", "1d", [], {}, [5]]
)
def test_invalid_durations(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_duration(value)
    assert caught.value.status == 400
    assert caught.value.param == "keep_alive"


# Repeated signs ("--5m") and non-finite numbers ("inf", "nan") are refused: an infinite or NaN expiry would
# poison expires_at, which JSON cannot carry (/admin/engines and /api/ps would fail).
@pytest.mark.parametrize(
    "value",
    ["--5m", "+-5m", "nan", "inf", "-inf", float("nan"), float("inf")],
    ids=["--5m", "+-5m", "str-nan", "str-inf", "str-neg-inf", "float-nan", "float-inf"],
)
def test_repeated_signs_and_non_finite_are_rejected(value: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_rejected(value: bool) -> None:
    with pytest.raises(InvalidRequest, match="boolean"):
        parse_duration(value)


def test_param_name_is_reported() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_duration("later", param="ttl")
    assert caught.value.param == "ttl"
    assert "ttl" in caught.value.message
