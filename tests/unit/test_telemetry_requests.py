"""RequestTracker: the state machine, the timings it derives, bounded memory and the finish hook."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from llmhost.telemetry.requests import (
    IllegalTransition,
    RequestRecord,
    RequestState,
    RequestSummary,
    RequestTracker,
)

S = RequestState


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def finished() -> list[RequestSummary]:
    return []


@pytest.fixture
def tracker(clock: Clock, finished: list[RequestSummary]) -> RequestTracker:
    return RequestTracker(on_finish=finished.append, clock=clock, wall_clock=lambda: 1_700_000_000.0)


def streamed(tracker: RequestTracker, clock: Clock) -> RequestRecord:
    """queued 0.5 s, loading 2 s, prefill 0.25 s, then 5 chunks 0.125 s apart."""
    record = tracker.start("openai", "smol", target="local", request_id="r1")
    clock.advance(0.5)
    tracker.transition(record.id, S.LOADING)
    clock.advance(2.0)
    tracker.transition(record.id, S.PREFILL)
    clock.advance(0.25)
    for _ in range(5):
        tracker.output(record.id)
        clock.advance(0.125)
    return record


def test_a_streamed_request_from_queue_to_done(tracker: RequestTracker, clock: Clock) -> None:
    record = streamed(tracker, clock)
    assert tracker.active() == [record]
    assert record.state == S.DECODING

    tracker.finish(record.id, status=200, prompt_tokens=12, completion_tokens=5)

    assert record.state == S.DONE and record.finished
    assert record.ttft_ms == 2750.0
    assert record.duration_ms == 3375.0  # 2.75 s to the first chunk + 5 x 0.125 s
    assert record.tokens_per_second == 8.0  # 4 tokens after the first, over the 0.5 s between first and last
    assert record.outputs == 5
    assert list(record.t_entered) == [S.QUEUED, S.LOADING, S.PREFILL, S.DECODING, S.DONE]
    assert tracker.active() == []
    assert tracker.get("r1") is record


def test_the_summary_is_the_history_row(tracker: RequestTracker, clock: Clock, finished: list[RequestSummary]) -> None:
    record = streamed(tracker, clock)

    tracker.finish(record.id, status=200, prompt_tokens=12, completion_tokens=5)

    assert finished == [
        RequestSummary(
            id="r1",
            started_at=1_700_000_000.0,
            dialect="openai",
            model="smol",
            target="local",
            state=S.DONE,
            status=200,
            prompt_tokens=12,
            completion_tokens=5,
            ttft_ms=2750.0,
            tokens_per_second=8.0,
            duration_ms=3375.0,
            error=None,
        )
    ]


def test_the_engines_own_speed_wins_over_ours(tracker: RequestTracker, clock: Clock) -> None:
    record = streamed(tracker, clock)

    tracker.finish(record.id, completion_tokens=5, tokens_per_second=56.5)

    assert record.tokens_per_second == 56.5


def test_a_non_streamed_request_has_no_ttft(tracker: RequestTracker, clock: Clock) -> None:
    record = tracker.start("ollama", "smol")
    tracker.transition(record.id, S.PREFILL)
    clock.advance(1.5)

    tracker.finish(record.id, status=200, completion_tokens=16)

    assert record.ttft_ms is None and record.tokens_per_second is None
    assert record.duration_ms == 1500.0


def test_one_token_gives_no_speed(tracker: RequestTracker, clock: Clock) -> None:
    record = tracker.start("openai", "smol")
    tracker.transition(record.id, S.PREFILL)
    tracker.output(record.id)
    clock.advance(1.0)

    tracker.finish(record.id, completion_tokens=1)

    assert record.tokens_per_second is None


@pytest.mark.parametrize("ending", [S.ERROR, S.CANCELLED])
@pytest.mark.parametrize("path", [[], [S.LOADING], [S.LOADING, S.PREFILL], [S.PREFILL, S.DECODING]])
def test_errors_and_cancellations_end_any_unfinished_state(
    tracker: RequestTracker, ending: RequestState, path: list[RequestState]
) -> None:
    record = tracker.start("tgi", "smol")
    for state in path:
        tracker.transition(record.id, state)

    tracker.finish(record.id, ending, status=503, error="engine crashed")

    assert (record.state, record.status, record.error) == (ending, 503, "engine crashed")


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], S.DECODING),  # queued straight to decoding
        ([S.PREFILL], S.LOADING),  # no way back
        ([S.LOADING], S.QUEUED),
        ([S.PREFILL, S.DECODING], S.PREFILL),
    ],
)
def test_illegal_transitions_raise(tracker: RequestTracker, path: list[RequestState], illegal: RequestState) -> None:
    record = tracker.start("openai", "smol")
    for state in path:
        tracker.transition(record.id, state)

    with pytest.raises(IllegalTransition):
        tracker.transition(record.id, illegal)
    assert record.state == (path[-1] if path else S.QUEUED)


def test_done_needs_the_prompt_processed(tracker: RequestTracker) -> None:
    record = tracker.start("openai", "smol")
    tracker.transition(record.id, S.LOADING)

    with pytest.raises(IllegalTransition):
        tracker.finish(record.id)


def test_ending_states_only_through_finish_and_only_once(tracker: RequestTracker) -> None:
    record = tracker.start("openai", "smol")
    with pytest.raises(IllegalTransition):
        tracker.transition(record.id, S.CANCELLED)
    with pytest.raises(IllegalTransition):
        tracker.finish(record.id, S.PREFILL)

    tracker.finish(record.id, S.CANCELLED)

    for attempt in (lambda: tracker.finish(record.id), lambda: tracker.transition(record.id, S.PREFILL)):
        with pytest.raises(IllegalTransition):
            attempt()
    with pytest.raises(IllegalTransition):
        tracker.output(record.id)


def test_the_first_token_needs_prefill(tracker: RequestTracker) -> None:
    record = tracker.start("openai", "smol")

    with pytest.raises(IllegalTransition):
        tracker.first_token(record.id)
    with pytest.raises(IllegalTransition):
        tracker.output(record.id)


def test_first_token_explicitly(tracker: RequestTracker, clock: Clock) -> None:
    record = tracker.start("openai", "smol")
    tracker.transition(record.id, S.PREFILL)
    clock.advance(0.2)

    tracker.first_token(record.id)

    assert record.state == S.DECODING and record.ttft_ms == pytest.approx(200.0)
    with pytest.raises(IllegalTransition):
        tracker.first_token(record.id)


def test_unknown_and_duplicate_ids(tracker: RequestTracker) -> None:
    with pytest.raises(KeyError):
        tracker.transition("nope", S.PREFILL)
    tracker.start("openai", "smol", request_id="same")
    with pytest.raises(ValueError, match="already tracked"):
        tracker.start("openai", "smol", request_id="same")
    assert tracker.get("nope") is None


def test_generated_ids_are_unique(tracker: RequestTracker) -> None:
    ids = {tracker.start("openai", "smol").id for _ in range(100)}

    assert len(ids) == 100


def test_finished_requests_are_kept_up_to_a_bound(clock: Clock) -> None:
    tracker = RequestTracker(keep_finished=3, clock=clock)
    for number in range(5):
        record = tracker.start("openai", "smol", request_id=f"r{number}")
        tracker.finish(record.id, S.CANCELLED)

    assert [record.id for record in tracker.finished()] == ["r4", "r3", "r2"]
    assert tracker.get("r1") is None and tracker.get("r2") is not None


def test_a_failing_hook_is_logged_not_raised(clock: Clock) -> None:
    def broken(summary: RequestSummary) -> None:
        raise RuntimeError("disk full")

    tracker = RequestTracker(on_finish=broken, clock=clock)
    record = tracker.start("openai", "smol")

    with capture_logs() as logs:
        tracker.finish(record.id, S.ERROR, status=500)

    assert record.finished and tracker.get(record.id) is record
    assert [entry["event"] for entry in logs] == ["request on_finish hook failed"]
