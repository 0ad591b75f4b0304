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


def test_non_streamed_reasoning_under_both_names(openai_client: openai.OpenAI) -> None:
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=ASK, max_tokens=80, temperature=0, extra_body=FORCED
    )
    message = reply.choices[0].message
    extra = message.model_extra or {}
    assert extra["reasoning_content"] == extra["reasoning"]
    assert len(extra["reasoning"].strip()) >= 8
    assert message.content and "<think>" not in message.content and "</think>" not in message.content


def test_streamed_reasoning_deltas_come_before_content(openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=ASK, max_tokens=80, temperature=0, stream=True, extra_body=FORCED
    )
    order: list[str] = []
    reasoning, content = "", ""
    for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta.model_extra or {}
            if delta.get("reasoning_content"):
                assert delta["reasoning"] == delta["reasoning_content"]
                reasoning += delta["reasoning_content"]
                order.append("reasoning")
            if choice.delta.content:
                content += choice.delta.content
                order.append("content")
    assert reasoning.strip() and content.strip()
    assert "<think>" not in content + reasoning and "</think>" not in content + reasoning
    assert order.index("content") > max(i for i, kind in enumerate(order) if kind == "reasoning")


def test_reasoning_fields_on_input_messages_are_accepted(openai_client: openai.OpenAI) -> None:
    messages: Any = [
        *ASK,
        {"role": "assistant", "content": "Four.", "reasoning_content": "2+2=4", "reasoning": "2+2=4"},
        {"role": "user", "content": "And three plus three?"},
    ]
    reply = openai_client.chat.completions.create(model=DEFAULT_MODEL, messages=messages, max_tokens=8)
    assert reply.choices[0].message.content is not None
