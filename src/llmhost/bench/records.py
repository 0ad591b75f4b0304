"""One measured request: its timeline and token counts, and the per-request metrics derived from them.

Timestamps are ``time.perf_counter()`` seconds (anchors-perf.md §1.8): ``t0`` just before the request is
written; ``first`` the first SSE event with a non-empty content or reasoning delta; ``last`` the last such
event; ``end`` the end of the stream (after the usage chunk and ``[DONE]``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestRecord:
    index: int
    input_target: int  # the prompt length asked for (tokens)
    output_target: int  # max_tokens
    t0: float
    end: float = 0.0
    first: float | None = None
    last: float | None = None
    chunk_times: list[float] = field(default_factory=list)  # every content-carrying event
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_estimated: bool = False  # completion_tokens did not come from the server's usage
    input_estimated: bool = False  # prompt_tokens did not come from the server's usage
    finish_reason: str | None = None
    status: int | None = None  # HTTP status; None when no response arrived
    error: str | None = None  # None: the request succeeded
    error_code: str | None = None  # e.g. http_503, timeout, connect, incomplete, stream_error
    text: str = ""  # generated text, kept only until the token count is settled

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ttft(self) -> float | None:
        return self.first - self.t0 if self.first is not None else None

    @property
    def e2e(self) -> float:
        return self.end - self.t0

    @property
    def output_tokens(self) -> int:
        return self.completion_tokens if self.completion_tokens is not None else len(self.chunk_times)

    @property
    def input_tokens(self) -> int:
        return self.prompt_tokens if self.prompt_tokens is not None else self.input_target

    @property
    def tpot(self) -> float | None:
        """(last - first) / (out - 1): vLLM's TPOT, which GuideLLM calls ITL; undefined below 2 tokens."""
        if self.first is None or self.last is None or self.output_tokens < 2:
            return None
        return (self.last - self.first) / (self.output_tokens - 1)

    @property
    def itl(self) -> list[float]:
        """Gaps between successive content events (one event may carry more than one token)."""
        return [later - earlier for earlier, later in itertools.pairwise(self.chunk_times)]

    def fail(self, code: str, message: str, now: float) -> RequestRecord:
        self.error_code = code
        self.error = message[:300]
        self.end = now
        return self
