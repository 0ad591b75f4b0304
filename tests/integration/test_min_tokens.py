"""vLLM's min_tokens on llama-server (which lacks it): EOS suppressed for the first N tokens, then a normal end."""

from __future__ import annotations

import openai
import pytest

from conftest import DEFAULT_MODEL

pytestmark = pytest.mark.integration

SHORT_ANSWER = [{"role": "user", "content": "Reply with one word: yes or no. Is water wet?"}]


def natural_length(client: openai.OpenAI) -> int:
    reply = client.chat.completions.create(model=DEFAULT_MODEL, messages=SHORT_ANSWER, max_tokens=64, temperature=0)
    assert reply.usage and reply.choices[0].finish_reason == "stop"
    return reply.usage.completion_tokens


def test_checklist_12_min_tokens_outlasts_the_natural_end(openai_client: openai.OpenAI) -> None:
    natural = natural_length(openai_client)
    floor = natural + 12
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=SHORT_ANSWER, max_tokens=200, temperature=0, extra_body={"min_tokens": floor}
    )
    assert reply.usage and reply.usage.completion_tokens >= floor
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.choices[0].message.content and len(reply.choices[0].message.content) > 10


def test_min_tokens_streamed_counts_every_token(openai_client: openai.OpenAI) -> None:
    floor = natural_length(openai_client) + 8
    stream = openai_client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=SHORT_ANSWER,
        max_tokens=100,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"min_tokens": floor},
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage and usage.completion_tokens >= floor
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1


def test_min_tokens_at_or_above_max_tokens_gives_exactly_max_tokens(openai_client: openai.OpenAI) -> None:
    reply = openai_client.completions.create(
        model=DEFAULT_MODEL, prompt="Yes.", max_tokens=24, temperature=0, extra_body={"min_tokens": 24}
    )
    assert reply.usage and reply.usage.completion_tokens == 24
    assert reply.choices[0].finish_reason == "length"


def test_min_tokens_with_structured_output_is_a_clear_400(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=SHORT_ANSWER,
            max_tokens=40,
            response_format={"type": "json_object"},
            extra_body={"min_tokens": 10},
        )
    assert "min_tokens" in str(caught.value)
