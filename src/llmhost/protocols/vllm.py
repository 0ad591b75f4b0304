"""vLLM server extras: a pure translator for /tokenize, /detokenize and /version (no I/O).

The sampling extras (top_k, min_p, repetition_penalty, ignore_eos, guided_json, structured_outputs) are
part of the OpenAI request parser, since vLLM accepts them on the OpenAI routes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from llmhost.protocols.openai import Wire, WireMessage, message_from_wire, validate_wire
from llmhost.types import DetokenizeRequest, InvalidRequest, Tokenized, TokenizeRequest


class WireTokenize(Wire):
    model: str = Field(min_length=1)
    prompt: str | None = None
    messages: list[WireMessage] | None = None
    add_special_tokens: bool | None = None
    add_generation_prompt: bool = True
    return_token_strs: bool = False


class WireDetokenize(Wire):
    model: str = Field(min_length=1)
    tokens: list[int] = Field(min_length=0)


def parse_tokenize(body: Any) -> TokenizeRequest:
    wire = validate_wire(WireTokenize, body)
    if (wire.prompt is None) == (wire.messages is None):
        raise InvalidRequest("send either prompt or messages", param="prompt")
    messages = [message_from_wire(m, i) for i, m in enumerate(wire.messages)] if wire.messages is not None else None
    default_special = messages is None  # vLLM: true for prompts, false for chat (the template adds them)
    add_special = default_special if wire.add_special_tokens is None else wire.add_special_tokens
    return TokenizeRequest(
        model=wire.model,
        prompt=wire.prompt,
        messages=messages,
        add_special=add_special,
        with_pieces=wire.return_token_strs,
    )


def parse_detokenize(body: Any) -> DetokenizeRequest:
    wire = validate_wire(WireDetokenize, body)
    if any(token < 0 for token in wire.tokens):
        raise InvalidRequest("tokens must be non-negative", param="tokens")
    return DetokenizeRequest(model=wire.model, tokens=wire.tokens)


def render_tokenize(result: Tokenized) -> dict[str, Any]:
    return {
        "count": len(result.tokens),
        "max_model_len": result.max_model_len,
        "tokens": result.tokens,
        "token_strs": result.pieces,
    }


def render_detokenize(text: str) -> dict[str, Any]:
    return {"prompt": text}
