"""Ollama-style durations for keep_alive and ttl: "5m", "1h30m", "300ms", 300, "300", "-1", 0."""

from __future__ import annotations

import math
import re

from llmhost.types import InvalidRequest

UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: object, param: str = "keep_alive") -> float | None:
    """Seconds; negative means forever; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRequest(f"{param}: expected a duration, got a boolean", param=param)
    if isinstance(value, int | float):
        return _finite(float(value), value, param)
    if not isinstance(value, str):
        raise InvalidRequest(f"{param}: expected a duration such as '5m' or seconds", param=param)
    text = value.strip()
    try:
        return _finite(float(text), value, param)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in ("+", "-") else text
    parts = PART.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise InvalidRequest(f"{param}: {value!r} is not a duration such as '5m', '1h30m' or seconds", param=param)
    return _finite(sign * sum(float(number) * UNITS[unit] for number, unit in parts), value, param)


MAX_SECONDS = 2**63 / 1e9  # Go's time.Duration limit (about 292 years), which Ollama enforces too


def _finite(seconds: float, value: object, param: str) -> float:
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise InvalidRequest(
            f"{param}: {value!r} is not a duration llmhost can keep (at most about 292 years); "
            "use a negative value for forever",
            param=param,
        )
    return seconds
