"""Separate ``<think>…</think>`` reasoning from the answer, for engines that leave the tags in the text.

llama-server splits reasoning itself only for chat templates it knows; for the rest the tags arrive as
plain content. The splitter works on the stream: text is passed on as soon as it cannot be part of a tag,
so at most a tag's length is ever held back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmhost.types import ReasoningDelta, StreamEvent, TextDelta

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Reasoning only when the answer starts with ``<think>`` (after whitespace), as thinking models do."""

    def __init__(self) -> None:
        self.state = "start"  # start -> thinking -> answer
        self.pending = ""
        self.after_close = False  # drop the newlines that separate </think> from the answer

    def feed(self, text: str) -> list[StreamEvent]:
        self.pending += text
        out: list[StreamEvent] = []
        while True:
            if self.state == "start":
                stripped = self.pending.lstrip()
                if not stripped or (OPEN.startswith(stripped) and stripped != OPEN):
                    return out  # could still become "<think>"
                if stripped.startswith(OPEN):
                    self.pending, self.state = stripped[len(OPEN) :], "thinking"
                    continue
                self.state = "answer"
            if self.state == "answer":
                if self.after_close:
                    self.pending = self.pending.lstrip("\n")
                    self.after_close = not self.pending
                if self.pending:
                    out.append(TextDelta(self.pending))
                self.pending = ""
                return out
            out += self._thinking()
            if self.state == "thinking":
                return out

    def _thinking(self) -> list[StreamEvent]:
        at = self.pending.find(CLOSE)
        if at >= 0:
            reasoning, rest = self.pending[:at], self.pending[at + len(CLOSE) :]
            self.pending, self.state, self.after_close = rest, "answer", True
            return [ReasoningDelta(reasoning)] if reasoning else []
        keep = _partial_suffix(self.pending, CLOSE)
        ready, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep :]
        return [ReasoningDelta(ready)] if ready else []

    def finish(self) -> list[StreamEvent]:
        text, self.pending = self.pending, ""
        if not text:
            return []
        return [ReasoningDelta(text)] if self.state == "thinking" else [TextDelta(text)]


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a beginning of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


async def split_reasoning(events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    splitter = ThinkSplitter()
    async for event in events:
        if isinstance(event, TextDelta):
            for out in splitter.feed(event.text):
                yield out
            continue
        if not isinstance(event, ReasoningDelta):
            for out in splitter.finish():
                yield out
        yield event
