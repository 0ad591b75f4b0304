"""The streaming <think> splitter: any chunking, tags split across chunks, answers without tags untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmhost.reasoning import ThinkSplitter, split_reasoning
from llmhost.types import Done, ReasoningDelta, StreamEvent, TextDelta


def split(text: str, size: int) -> tuple[str, str, int]:
    splitter = ThinkSplitter()
    events: list[StreamEvent] = []
    for i in range(0, len(text), size):
        events += splitter.feed(text[i : i + size])
    events += splitter.finish()
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    content = "".join(e.text for e in events if isinstance(e, TextDelta))
    return reasoning, content, len(events)


@pytest.mark.parametrize("size", [1, 2, 3, 6, 7, 8, 1000])
def test_think_block_is_split_out_at_any_chunking(size: int) -> None:
    text = "<think>2 + 2: count </thin k> up</think>\n\nThe answer is 4 <think>"
    assert split(text, size)[:2] == ("2 + 2: count </thin k> up", "The answer is 4 <think>")


@pytest.mark.parametrize("size", [1, 4, 1000])
@pytest.mark.parametrize("text", ["No tags here.", "A <think>late</think> tag", "<thinking about it", "<th"])
def test_answers_that_do_not_start_with_think_are_untouched(size: int, text: str) -> None:
    assert split(text, size)[:2] == ("", text)


def test_unclosed_think_is_all_reasoning() -> None:
    assert split("<think>cut off by max_tokens", 3)[:2] == ("cut off by max_tokens", "")


def test_reasoning_streams_before_the_block_closes() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<think>first ") == [ReasoningDelta("first ")]
    assert splitter.feed("second </th") == [ReasoningDelta("second ")]  # "</th" may be the close tag
    assert splitter.feed("ink>Answer") == [TextDelta("Answer")]


async def test_split_reasoning_flushes_before_done() -> None:
    async def engine() -> AsyncIterator[StreamEvent]:
        yield TextDelta("<think>hmm")
        yield Done("length")

    events = [event async for event in split_reasoning(engine())]
    assert events == [ReasoningDelta("hmm"), Done("length")]
