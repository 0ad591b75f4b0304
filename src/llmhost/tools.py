"""Tool calling for models whose engine does not handle tools natively.

As llama.cpp's old generic format did: describe the tools in the prompt, constrain the output with a
JSON schema to either ``{"tool_calls": [{"name", "arguments"}]}`` or ``{"response": "..."}``, and turn
the result back into tool-call events. The answer text is streamed as it is generated; tool calls
are emitted whole, each in one delta, once their JSON is complete.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson

from llmhost.types import (
    ChatRequest,
    Done,
    Message,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCallDelta,
)

INSTRUCTIONS = (
    "You can call these tools:\n{tools}\n\n"
    'Reply with JSON only. To call tools: {{"tool_calls": [{{"name": <tool name>, "arguments": {{...}}}}]}}. '
    'To answer the user directly: {{"response": <your answer>}}.'
)


def uses_tools(req: ChatRequest) -> bool:
    return bool(req.tools) and req.tool_choice != "none"


def prompted_request(req: ChatRequest) -> ChatRequest:
    """The same request with tools moved into the prompt and the answer shape forced by a schema."""
    sampling = replace(req.sampling, json_schema=answer_schema(req.tools, req.tool_choice), json_object=False)
    messages = [_system_message(req.tools), *(_plain_message(m) for m in req.messages)]
    return replace(req, messages=_merge_system(messages), sampling=sampling, tools=[], tool_choice="none")


def answer_schema(tools: list[Tool], choice: str) -> dict[str, Any]:
    chosen = tools if choice in ("auto", "required") else [t for t in tools if t.name == choice]
    call = {"anyOf": [_call_schema(tool) for tool in chosen]}
    calls = {
        "type": "object",
        "properties": {"tool_calls": {"type": "array", "items": call, "minItems": 1}},
        "required": ["tool_calls"],
        "additionalProperties": False,
    }
    if choice != "auto":
        return calls
    response = {
        "type": "object",
        "properties": {"response": {"type": "string"}},
        "required": ["response"],
        "additionalProperties": False,
    }
    return {"oneOf": [calls, response]}


def _call_schema(tool: Tool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": tool.parameters or {"type": "object"}},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _system_message(tools: list[Tool]) -> Message:
    described = "\n".join(
        orjson.dumps({"name": t.name, "description": t.description, "parameters": t.parameters}).decode() for t in tools
    )
    return Message(role="system", content=INSTRUCTIONS.format(tools=described))


def _merge_system(messages: list[Message]) -> list[Message]:
    """Chat templates often accept one leading system message only."""
    systems = [m.content or "" for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    return [Message(role="system", content="\n\n".join(reversed(systems))), *rest]


def _plain_message(message: Message) -> Message:
    """Earlier tool calls and results, rewritten as text any chat template accepts."""
    if message.role == "assistant" and message.tool_calls:
        calls = [{"name": c.name, "arguments": _loads_or_text(c.arguments)} for c in message.tool_calls]
        return Message(role="assistant", content=orjson.dumps({"tool_calls": calls}).decode())
    if message.role == "tool":
        name = f" {message.name}" if message.name else ""
        return Message(role="user", content=f"Result of tool call{name} ({message.tool_call_id}): {message.content}")
    return message


def _loads_or_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


async def tool_events(events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """Turn the engine's constrained JSON text back into answer text or tool-call events."""
    decoder = AnswerDecoder()
    async for event in events:
        if isinstance(event, TextDelta):
            for out in decoder.feed(event.text):
                yield out
        elif isinstance(event, Done):
            for out in decoder.finish():
                yield out
            yield replace(event, finish_reason="tool_calls") if decoder.called_tools else event
        else:
            yield event


class AnswerDecoder:
    """Incremental reader of ``{"response": "..."}`` / ``{"tool_calls": [...]}`` text."""

    def __init__(self) -> None:
        self.buffer = ""
        self.mode: str | None = None  # "response" | "tool_calls" | "raw"
        self.pos = 0  # next unread character of the response string
        self.closed = False
        self.called_tools = False

    def feed(self, text: str) -> list[StreamEvent]:
        self.buffer += text
        if self.mode is None:
            self._detect_mode()
        if self.mode == "response":
            return self._drain_response()
        if self.mode == "raw":
            return self._drain_raw()
        return []

    def _detect_mode(self) -> None:
        stripped = self.buffer.lstrip()
        if stripped and not stripped.startswith("{"):
            self.mode = "raw"
            return
        match = FIRST_KEY.match(self.buffer)
        if match is None:
            return
        if match["key"] == "tool_calls":
            self.mode = "tool_calls"
        elif match["key"] == "response" and match["quote"]:
            self.mode, self.pos = "response", match.end()
        elif match["key"] not in ("response", "tool_calls"):
            self.mode = "raw"

    def _drain_raw(self) -> list[StreamEvent]:
        text, self.buffer = self.buffer, ""
        return [TextDelta(text)] if text else []

    def _drain_response(self) -> list[StreamEvent]:
        out: list[str] = []
        buf, i = self.buffer, self.pos
        while i < len(buf) and not self.closed:
            char = buf[i]
            if char == '"':
                self.closed = True
                i += 1
                break
            if char != "\\":
                out.append(char)
                i += 1
                continue
            decoded, width = _escape(buf, i)
            if width == 0:
                break  # an escape split across chunks: wait for the rest
            out.append(decoded)
            i += width
        self.pos = i
        text = "".join(out)
        return [TextDelta(text)] if text else []

    def finish(self) -> list[StreamEvent]:
        if self.mode != "tool_calls":
            return [] if self.mode in ("response", "raw") else self._drain_raw()
        try:
            calls = orjson.loads(self.buffer)["tool_calls"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self._drain_raw()  # cut short (e.g. max_tokens): hand back the text, lose nothing
        self.called_tools = True
        return [
            ToolCallDelta(
                index=i,
                id=f"call_{secrets.token_hex(8)}",
                name=str(call.get("name", "")),
                arguments=orjson.dumps(call.get("arguments", {})).decode(),
            )
            for i, call in enumerate(calls)
        ]


FIRST_KEY = re.compile(r'\s*\{\s*"(?P<key>[^"]*)"\s*:\s*(?P<quote>"?)')
SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _escape(buf: str, i: int) -> tuple[str, int]:
    """Decode the JSON escape at ``buf[i]``; width 0 when it is not complete yet."""
    if i + 1 >= len(buf):
        return "", 0
    kind = buf[i + 1]
    if kind in SIMPLE_ESCAPES:
        return SIMPLE_ESCAPES[kind], 2
    if kind != "u":
        return kind, 2
    if i + 6 > len(buf):
        return "", 0
    code = int(buf[i + 2 : i + 6], 16)
    if 0xD800 <= code < 0xDC00:  # a surrogate pair needs the low half too
        if i + 12 > len(buf):
            return "", 0
        low = int(buf[i + 8 : i + 12], 16)
        return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), 12
    return chr(code), 6
