"""Request tracking: each request's state, timings and token counts, from arrival to its end.

The tracker observes the request flow and never sits in its critical path: a failing ``on_finish`` hook is logged,
never raised. It is meant for the event loop's thread only. Durations use a monotonic clock; ``started_at`` is
wall-clock time, for display and history.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

log = structlog.get_logger(__name__)


class RequestState(StrEnum):
    QUEUED = "queued"
    LOADING = "loading"
    PREFILL = "prefill"
    DECODING = "decoding"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


FINAL = frozenset({RequestState.DONE, RequestState.ERROR, RequestState.CANCELLED})
ENDINGS = frozenset({RequestState.ERROR, RequestState.CANCELLED})  # possible from every unfinished state
ALLOWED: dict[RequestState, frozenset[RequestState]] = {
    RequestState.QUEUED: frozenset({RequestState.LOADING, RequestState.PREFILL}) | ENDINGS,
    RequestState.LOADING: frozenset({RequestState.PREFILL}) | ENDINGS,
    RequestState.PREFILL: frozenset({RequestState.DECODING, RequestState.DONE}) | ENDINGS,  # DONE: no tokens
    RequestState.DECODING: frozenset({RequestState.DONE}) | ENDINGS,
    RequestState.DONE: frozenset(),
    RequestState.ERROR: frozenset(),
    RequestState.CANCELLED: frozenset(),
}


class IllegalTransition(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """A request as history keeps it (one row of the store)."""

    id: str
    started_at: float
    dialect: str
    model: str
    target: str | None
    state: RequestState
    status: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: float | None
    tokens_per_second: float | None
    duration_ms: float | None
    error: str | None


@dataclass(slots=True, eq=False)
class RequestRecord:
    """A tracked request. ``t_*`` fields are readings of the tracker's monotonic clock."""

    id: str
    dialect: str
    model: str
    target: str | None
    started_at: float
    t_started: float
    state: RequestState = RequestState.QUEUED
    t_entered: dict[RequestState, float] = field(default_factory=dict)
    t_first_token: float | None = None
    t_last_output: float | None = None
    t_finished: float | None = None
    outputs: int = 0  # streamed chunks with content seen so far (chunks, not tokens)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    engine_tokens_per_second: float | None = None
    status: int | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    @property
    def ttft_ms(self) -> float | None:
        return None if self.t_first_token is None else (self.t_first_token - self.t_started) * 1000

    @property
    def duration_ms(self) -> float | None:
        return None if self.t_finished is None else (self.t_finished - self.t_started) * 1000

    @property
    def tokens_per_second(self) -> float | None:
        """The engine's own generation speed when it reported one; else (tokens - 1) / (last - first output)."""
        if self.engine_tokens_per_second is not None:
            return self.engine_tokens_per_second
        tokens, first, last = self.completion_tokens, self.t_first_token, self.t_last_output
        if tokens is None or tokens < 2 or first is None or last is None or last <= first:
            return None
        return (tokens - 1) / (last - first)

    def summary(self) -> RequestSummary:
        return RequestSummary(
            id=self.id,
            started_at=self.started_at,
            dialect=self.dialect,
            model=self.model,
            target=self.target,
            state=self.state,
            status=self.status,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            ttft_ms=self.ttft_ms,
            tokens_per_second=self.tokens_per_second,
            duration_ms=self.duration_ms,
            error=self.error,
        )


class RequestTracker:
    def __init__(
        self,
        *,
        on_finish: Callable[[RequestSummary], None] | None = None,
        keep_finished: int = 500,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``on_finish`` gets a frozen summary of every finished request (safe to hand to a writer thread)."""
        self.on_finish = on_finish
        self.keep_finished = keep_finished
        self.clock = clock
        self.wall_clock = wall_clock
        self._active: dict[str, RequestRecord] = {}
        self._finished: dict[str, RequestRecord] = {}  # oldest first

    def start(
        self, dialect: str, model: str, *, target: str | None = None, request_id: str | None = None
    ) -> RequestRecord:
        now = self.clock()
        record = RequestRecord(
            id=request_id or uuid.uuid4().hex,
            dialect=dialect,
            model=model,
            target=target,
            started_at=self.wall_clock(),
            t_started=now,
            t_entered={RequestState.QUEUED: now},
        )
        if record.id in self._active or record.id in self._finished:
            raise ValueError(f"request {record.id} is already tracked")
        self._active[record.id] = record
        return record

    def transition(self, request_id: str, state: RequestState) -> RequestRecord:
        """Move an unfinished request to an unfinished state; ``finish`` ends it."""
        if state in FINAL:
            raise IllegalTransition(f"{state} ends a request: use finish()")
        record = self._require_active(request_id)
        self._move(record, state)
        return record

    def first_token(self, request_id: str) -> RequestRecord:
        """The first content reached the client: prefill -> decoding, and the time to first token is known."""
        record = self._require_active(request_id)
        self._move(record, RequestState.DECODING)
        record.t_first_token = record.t_entered[RequestState.DECODING]
        return record

    def output(self, request_id: str) -> RequestRecord:
        """A streamed chunk with content; the first one is the first token."""
        record = self._require_active(request_id)
        if record.state != RequestState.DECODING:
            self.first_token(request_id)
        record.outputs += 1
        record.t_last_output = self.clock()
        return record

    def finish(
        self,
        request_id: str,
        state: RequestState = RequestState.DONE,
        *,
        status: int | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        tokens_per_second: float | None = None,
        error: str | None = None,
    ) -> RequestRecord:
        """End a request with the engine's usage (and timings' generation speed, when it gave them)."""
        if state not in FINAL:
            raise IllegalTransition(f"{state} does not end a request")
        record = self._require_active(request_id)
        self._move(record, state)
        record.t_finished = record.t_entered[state]
        record.status, record.error = status, error
        record.prompt_tokens, record.completion_tokens = prompt_tokens, completion_tokens
        record.engine_tokens_per_second = tokens_per_second
        self._retire(record)
        return record

    def active(self) -> list[RequestRecord]:
        return list(self._active.values())

    def finished(self) -> list[RequestRecord]:
        """Recently finished requests, newest first."""
        return list(reversed(self._finished.values()))

    def get(self, request_id: str) -> RequestRecord | None:
        return self._active.get(request_id) or self._finished.get(request_id)

    def _require_active(self, request_id: str) -> RequestRecord:
        record = self._active.get(request_id)
        if record is not None:
            return record
        if request_id in self._finished:
            raise IllegalTransition(f"request {request_id} already finished")
        raise KeyError(request_id)

    def _move(self, record: RequestRecord, state: RequestState) -> None:
        if state not in ALLOWED[record.state]:
            raise IllegalTransition(f"request {record.id}: {record.state} -> {state} is not allowed")
        record.state = state
        record.t_entered[state] = self.clock()

    def _retire(self, record: RequestRecord) -> None:
        del self._active[record.id]
        self._finished[record.id] = record
        while len(self._finished) > self.keep_finished:
            del self._finished[next(iter(self._finished))]
        if self.on_finish is not None:
            try:
                self.on_finish(record.summary())
            except Exception:
                log.exception("request on_finish hook failed", request_id=record.id)
