"""Reasoning split out of real engine output: a GBNF grammar forces the small model to answer
``<think>…</think>answer`` (it cannot think on its own), and llmhost must separate the two."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from conftest import DEFAULT_MODEL

pytestmark = pytest.mark.integration

THINK_GRAMMAR = 'root ::= "<think>" [a-z ]{8,40} "</think>" "\\n" [A-Za-z ]{4,40}'
ASK: Any = [{"role": "user", "content": "What is two plus two?"}]
FORCED: dict[str, Any] = {"grammar": THINK_GRAMMAR}


REASONING_NAMES = ("reasoning_content", "reasoning")


def test_checklist_13_message_reasoning_content_equals_reasoning(openai_client: openai.OpenAI) -> None:
    """§7.13 (rule 10): the split-out thoughts are in ``message.reasoning_content`` and ``message.reasoning``,
    identical, and the ``<think>`` tags are gone from both them and the content."""
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=ASK, max_tokens=80, temperature=0, extra_body=FORCED
    )
    message = reply.choices[0].message
    extra = message.model_extra or {}
    assert extra["reasoning_content"] == extra["reasoning"]
    assert len(extra["reasoning"].strip()) >= 8
    assert "<think>" not in extra["reasoning"] and "</think>" not in extra["reasoning"]
    assert message.content and "<think>" not in message.content and "</think>" not in message.content


def test_checklist_13_delta_reasoning_content_equals_reasoning(openai_client: openai.OpenAI) -> None:
    """§7.13 (rule 10): every delta that carries reasoning carries it under both names with the same text; the
    reasoning deltas come before the content and add up to the non-streamed reasoning."""
    stream = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=ASK, max_tokens=80, temperature=0, stream=True, extra_body=FORCED
    )
    order: list[str] = []
    reasoning, content = "", ""
    for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta.model_extra or {}
            names = [name for name in REASONING_NAMES if name in delta]
            if names:
                assert names == list(REASONING_NAMES), f"reasoning under one name only: {delta}"
                assert delta["reasoning"] == delta["reasoning_content"]
                reasoning += delta["reasoning_content"]
                order.append("reasoning")
            if choice.delta.content:
                content += choice.delta.content
                order.append("content")
    assert reasoning.strip() and content.strip()
    assert "<think>" not in content + reasoning and "</think>" not in content + reasoning
    assert order.index("content") > max(i for i, kind in enumerate(order) if kind == "reasoning")

    whole = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=ASK, max_tokens=80, temperature=0, extra_body=FORCED
    )
    message = whole.choices[0].message
    assert reasoning == (message.model_extra or {})["reasoning"]
    assert content == message.content


@pytest.mark.parametrize(
    "fields",
    [{"reasoning_content": "2+2=4"}, {"reasoning": "2+2=4"}, {"reasoning_content": "2+2=4", "reasoning": "2+2=4"}],
    ids=["reasoning_content", "reasoning", "both"],
)
def test_checklist_13_input_messages_with_either_reasoning_field_are_accepted(
    openai_client: openai.OpenAI, fields: dict[str, str]
) -> None:
    """§7.13 (rule 10): an assistant message sent back with ``reasoning_content``, ``reasoning`` or both is no 400."""
    messages: Any = [
        *ASK,
        {"role": "assistant", "content": "Four.", **fields},
        {"role": "user", "content": "And three plus three?"},
    ]
    reply = openai_client.chat.completions.create(model=DEFAULT_MODEL, messages=messages, max_tokens=8, temperature=0)
    assert reply.choices[0].message.content
