"""OpenAI dialect: a pure translator, no I/O.

Server side: wire request -> internal request (``parse_*``), internal events -> wire chunks and
bodies (``ChatStream``, ``render_*``). Client side, for OpenAI-compatible upstreams such as
llama-server: internal request -> wire body (``*_to_wire``), wire chunk -> internal events
(``UpstreamChunkParser``).
"""

from __future__ import annotations

import base64
import secrets
import struct
import time
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmhost.durations import parse_duration
from llmhost.types import (
    ChatRequest,
    CompletionRequest,
    Done,
    Embeddings,
    EmbedRequest,
    InvalidRequest,
    LlmhostError,
    Message,
    ReasoningDelta,
    Sampling,
    StreamEvent,
    TextDelta,
    Timings,
    TokenInfo,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# Wire models (validation only; extra fields are accepted and ignored, as vLLM does) -----------


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class WireFunction(Wire):
    name: str
    arguments: str | dict[str, Any] = ""


class WireToolCall(Wire):
    id: str = ""
    type: str = "function"
    function: WireFunction


class WireMessage(Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[WireToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class WireToolFunction(Wire):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class WireTool(Wire):
    type: Literal["function"] = "function"
    function: WireToolFunction


class WireStreamOptions(Wire):
    include_usage: bool = False


class WireSamplingFields(Wire):
    model: str = Field(min_length=1)
    stream: bool = False
    stream_options: WireStreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, lt=2**31)
    max_completion_tokens: int | None = Field(None, ge=1, lt=2**31)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=-1, lt=2**31)
    min_p: float | None = Field(None, ge=0, le=1)
    n: int = Field(1, ge=1, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0)
    logit_bias: dict[str, float] | None = None
    min_tokens: int | None = Field(None, ge=0, lt=2**31)
    ignore_eos: bool = False
    response_format: dict[str, Any] | None = None
    grammar: str | None = None
    guided_json: dict[str, Any] | str | None = None
    structured_outputs: dict[str, Any] | None = None
    keep_alive: str | float | None = None  # Ollama semantics, as an llmhost extra


class WireChatRequest(WireSamplingFields):
    messages: list[WireMessage] = Field(min_length=1)
    tools: list[WireTool] | None = None
    tool_choice: str | dict[str, Any] | None = None


class WireCompletionRequest(WireSamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False


class WireEmbeddingRequest(Wire):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    keep_alive: str | float | None = None


# Parsing -------------------------------------------------------------------------------------


W = TypeVar("W", bound=BaseModel)


def validate_wire(model: type[W], body: Any) -> W:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if not _is_type_label(part))
        raise InvalidRequest(f"{where}: {first['msg']}", param=where or None) from exc


TYPE_LABELS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _is_type_label(part: object) -> bool:
    """pydantic adds the union member to error locations (``stop.str``); clients want ``stop``."""
    return isinstance(part, str) and (part in TYPE_LABELS or "[" in part)


def parse_chat(body: Any) -> ChatRequest:
    wire = validate_wire(WireChatRequest, body)
    tools = [_tool(t) for t in wire.tools or []]
    return ChatRequest(
        model=wire.model,
        messages=[message_from_wire(m, i) for i, m in enumerate(wire.messages)],
        sampling=_sampling(wire),
        stream=wire.stream,
        tools=tools,
        tool_choice=_tool_choice(wire.tool_choice, tools),
        include_usage=_include_usage(wire),
        keep_alive=parse_duration(wire.keep_alive),
    )


def parse_completion(body: Any) -> CompletionRequest:
    wire = validate_wire(WireCompletionRequest, body)
    prompt = wire.prompt
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        if len(prompt) != 1:
            raise InvalidRequest("Only one prompt per request is supported.", param="prompt")
        prompt = prompt[0]
    sampling = _sampling(wire)
    if sampling.max_tokens is None:
        sampling.max_tokens = 16  # the OpenAI spec default for legacy completions
    return CompletionRequest(
        model=wire.model,
        prompt=prompt,  # type: ignore[arg-type]
        sampling=sampling,
        stream=wire.stream,
        include_usage=_include_usage(wire),
        echo=wire.echo,
        keep_alive=parse_duration(wire.keep_alive),
    )


def parse_embeddings(body: Any) -> tuple[EmbedRequest, Literal["float", "base64"]]:
    wire = validate_wire(WireEmbeddingRequest, body)
    raw = wire.input
    single = isinstance(raw, str) or bool(raw and isinstance(raw[0], int))
    inputs: list[Any] = [raw] if single else list(raw)
    if not inputs or any(len(item) == 0 for item in inputs):
        raise InvalidRequest("input must not be empty.", param="input")
    return EmbedRequest(
        model=wire.model, inputs=inputs, keep_alive=parse_duration(wire.keep_alive)
    ), wire.encoding_format


def _include_usage(wire: WireSamplingFields) -> bool:
    if wire.stream_options is None:
        return False
    if not wire.stream:
        raise InvalidRequest("Stream options can only be defined when `stream=True`.", param="stream_options")
    return wire.stream_options.include_usage


def _sampling(wire: WireSamplingFields) -> Sampling:
    stop = [wire.stop] if isinstance(wire.stop, str) else list(wire.stop or [])
    sampling = Sampling(
        max_tokens=wire.max_completion_tokens or wire.max_tokens,
        temperature=wire.temperature,
        top_p=wire.top_p,
        top_k=wire.top_k,
        min_p=wire.min_p,
        stop=stop,
        seed=wire.seed,
        presence_penalty=wire.presence_penalty,
        frequency_penalty=wire.frequency_penalty,
        repeat_penalty=wire.repetition_penalty,
        logit_bias=wire.logit_bias,
        min_tokens=wire.min_tokens,
        ignore_eos=wire.ignore_eos,
        grammar=wire.grammar,
    )
    _apply_structured_output(wire, sampling)
    return sampling


def _apply_structured_output(wire: WireSamplingFields, sampling: Sampling) -> None:
    fmt = wire.response_format or {}
    kind = fmt.get("type", "text")
    if kind == "json_object":
        sampling.json_object = True
    elif kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise InvalidRequest("response_format.json_schema must be an object.", param="response_format")
        sampling.json_schema = spec.get("schema") or {}
    elif kind != "text":
        raise InvalidRequest(f"response_format.type {kind!r} is not supported.", param="response_format")
    guided = wire.guided_json or (wire.structured_outputs or {}).get("json")
    if isinstance(guided, str):
        try:
            guided = orjson.loads(guided)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("guided_json is not valid JSON.", param="guided_json") from exc
    if isinstance(guided, dict):
        sampling.json_schema = guided


def message_from_wire(wire: WireMessage, index: int) -> Message:
    role = "system" if wire.role == "developer" else wire.role
    text, images = _content(wire.content, index)
    calls = [_tool_call(call, i) for i, call in enumerate(wire.tool_calls or [])]
    if role == "tool" and not wire.tool_call_id:
        raise InvalidRequest(
            f"messages.{index}.tool_call_id is required for tool messages.", param=f"messages.{index}.tool_call_id"
        )
    return Message(
        role=role,
        content=text,
        reasoning=wire.reasoning_content or wire.reasoning,
        tool_calls=calls,
        tool_call_id=wire.tool_call_id,
        name=wire.name,
        images=images,
    )


def _content(content: str | list[dict[str, Any]] | None, index: int) -> tuple[str | None, list[str]]:
    if content is None or isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            url = part.get("image_url")
            images.append(url.get("url", "") if isinstance(url, dict) else str(url))
        else:
            raise InvalidRequest(
                f"messages.{index}.content: unsupported part type {kind!r}.", param=f"messages.{index}.content"
            )
    return "\n".join(texts), images


def _tool_call(call: WireToolCall, index: int) -> ToolCall:
    args = call.function.arguments
    text = args if isinstance(args, str) else orjson.dumps(args).decode()
    return ToolCall(id=call.id or f"call_{index}", name=call.function.name, arguments=text)


def _tool(wire: WireTool) -> Tool:
    params = wire.function.parameters or {"type": "object", "properties": {}}
    return Tool(name=wire.function.name, description=wire.function.description or "", parameters=params)


def _tool_choice(choice: str | dict[str, Any] | None, tools: list[Tool]) -> str:
    if choice is None:
        return "auto" if tools else "none"
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequest(f"tool_choice {choice!r} is not one of auto, none, required.", param="tool_choice")
        if choice != "none" and not tools:
            raise InvalidRequest("tool_choice needs tools.", param="tool_choice")
        return choice
    name = (choice.get("function") or {}).get("name")
    if not any(tool.name == name for tool in tools):
        raise InvalidRequest(f"tool_choice names a tool that is not in tools: {name!r}.", param="tool_choice")
    return str(name)


# Rendering (server side) ---------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def usage_dict(usage: Usage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return body


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


class _SseStream:
    """Chunks of one response share id, object, created and model: their JSON prefix is built once."""

    object_name = ""
    id_prefix = ""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = new_id(self.id_prefix)
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self._prefix = orjson.dumps(
            {"id": self.id, "object": self.object_name, "created": self.created, "model": model}
        )[:-1]

    def _record(self, choice: dict[str, Any]) -> bytes:
        return b"data: " + self._prefix + b',"choices":[' + orjson.dumps(choice) + b"]}\n\n"

    def _end(self, done: Done, finish: bytes) -> bytes:
        """The finish chunk, then the usage chunk (``choices: []``) when asked for, then ``[DONE]``."""
        if self.include_usage and done.usage is not None:
            tail = {"choices": [], "usage": usage_dict(done.usage)}
            finish += b"data: " + self._prefix + b"," + orjson.dumps(tail)[1:] + b"\n\n"
        return finish + SSE_DONE

    def error(self, error: LlmhostError) -> bytes:
        return sse(error_body(error)) + SSE_DONE


class ChatStream(_SseStream):
    """Turns internal events into chat.completion.chunk SSE records (rules 1, 2, 3 of api-compat §0)."""

    object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl"

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return self._record({"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason})

    def first(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._chunk({"content": event.text})
        if isinstance(event, ReasoningDelta):
            return self._chunk({"reasoning_content": event.text, "reasoning": event.text})
        if isinstance(event, ToolCallDelta):
            return self._chunk({"tool_calls": [tool_call_delta_dict(event)]})
        return self.finish(event)

    def finish(self, done: Done) -> bytes:
        return self._end(done, self._chunk({}, done.finish_reason if done.finish_reason != "error" else "stop"))


def tool_call_delta_dict(event: ToolCallDelta) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": event.index}
    function: dict[str, Any] = {"arguments": event.arguments}
    if event.id is not None:
        entry["id"] = event.id
        entry["type"] = "function"
    if event.name is not None:
        function["name"] = event.name
    entry["function"] = function
    return entry


class CompletionStream(_SseStream):
    """Turns internal events into text_completion SSE records."""

    object_name = "text_completion"
    id_prefix = "cmpl"

    def _chunk(self, text: str, finish_reason: str | None) -> bytes:
        return self._record({"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason})

    def event(self, event: StreamEvent) -> bytes | None:
        if isinstance(event, TextDelta):
            return self._chunk(event.text, None)
        if isinstance(event, Done):
            return self.finish(event)
        return None

    def finish(self, done: Done) -> bytes:
        return self._end(done, self._chunk("", "length" if done.finish_reason == "length" else "stop"))


class Accumulator:
    """Collects a whole event stream for a non-streamed answer."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, dict[str, str]] = {}
        self.done: Done | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self.reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self.tool_calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = event.id or call["id"]
            call["name"] = event.name or call["name"]
            call["arguments"] += event.arguments
        else:
            self.done = event


def render_chat(model: str, acc: Accumulator) -> dict[str, Any]:
    done = acc.done or Done("stop")
    calls = [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for _, c in sorted(acc.tool_calls.items())
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(acc.text) if acc.text or not calls else None,
        "refusal": None,
        "tool_calls": calls or None,
    }
    if acc.reasoning:
        message["reasoning_content"] = message["reasoning"] = "".join(acc.reasoning)
    body: dict[str, Any] = {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": done.finish_reason}],
    }
    if done.usage is not None:
        body["usage"] = usage_dict(done.usage)
    return body


def render_completion(model: str, acc: Accumulator) -> dict[str, Any]:
    done = acc.done or Done("stop")
    body: dict[str, Any] = {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": "".join(acc.text), "logprobs": None, "finish_reason": done.finish_reason}],
    }
    if done.usage is not None:
        body["usage"] = usage_dict(done.usage)
    return body


def render_embeddings(model: str, result: Embeddings, encoding: Literal["float", "base64"]) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": i, "embedding": _encode_vector(vector, encoding)}
        for i, vector in enumerate(result.vectors)
    ]
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    return {"object": "list", "model": model, "data": data, "usage": usage}


def _encode_vector(vector: list[float], encoding: Literal["float", "base64"]) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def model_object(name: str, created: float, owned_by: str, max_model_len: int | None) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": int(created),
        "owned_by": owned_by,
        "root": name,
        "parent": None,
        "max_model_len": max_model_len,
    }


ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "not_found": "invalid_request_error",
    "too_large": "invalid_request_error",
    "unavailable": "service_unavailable",
    "overloaded": "rate_limit_exceeded",
    "engine_error": "server_error",
    "timeout": "timeout",
}


def error_body(error: LlmhostError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": ERROR_TYPES.get(error.kind, "server_error"),
            "param": error.param,
            "code": error.code,
        }
    }


# Client side: talking to an OpenAI-compatible upstream (llama-server) ------------------------


def _sampling_to_wire(sampling: Sampling) -> dict[str, Any]:
    body: dict[str, Any] = {}
    fields = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "typical_p": sampling.typical_p,
        "repeat_last_n": sampling.repeat_last_n,
        "seed": sampling.seed,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "repeat_penalty": sampling.repeat_penalty,
        "logit_bias": sampling.logit_bias,
        "grammar": sampling.grammar,
    }
    body.update({key: value for key, value in fields.items() if value is not None})
    if sampling.stop:
        body["stop"] = sampling.stop
    if sampling.ignore_eos:
        body["ignore_eos"] = True
    if sampling.json_schema is not None:
        body["json_schema"] = sampling.json_schema
    elif sampling.json_object:
        body["response_format"] = {"type": "json_object"}
    return body


def message_to_wire(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content or ""}
    if message.tool_calls:
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        wire["tool_call_id"] = message.tool_call_id
    if message.name:
        wire["name"] = message.name
    return wire


def chat_to_wire(req: ChatRequest) -> dict[str, Any]:
    body = _sampling_to_wire(req.sampling)
    body["model"] = req.model
    body["messages"] = [message_to_wire(m) for m in req.messages]
    if req.think is False:
        body["chat_template_kwargs"] = {"enable_thinking": False}
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if req.tools and req.tool_choice != "none":
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in req.tools
        ]
        choice = req.tool_choice
        body["tool_choice"] = (
            choice if choice in ("auto", "required") else {"type": "function", "function": {"name": choice}}
        )
    return body


def completion_to_wire(req: CompletionRequest) -> dict[str, Any]:
    body = _sampling_to_wire(req.sampling)
    body["model"] = req.model
    body["prompt"] = req.prompt
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if req.sampling.token_details:
        body["logprobs"] = 1
        body["verbose"] = True  # llama-server adds its native result (``__verbose``, with ``stop_type``) to chunks
    return body


FINISH_REASONS: dict[str, Literal["stop", "length", "tool_calls"]] = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


class UpstreamChunkParser:
    """Parses an OpenAI-compatible stream (one JSON chunk at a time) into internal events."""

    def __init__(self) -> None:
        self.finish_reason: Literal["stop", "length", "tool_calls"] = "stop"
        self.usage: Usage | None = None
        self.timings: Timings | None = None
        self.tokens_seen: int | None = None  # counted only when the upstream reports tokens
        self.stop_type: str | None = None  # llama-server's native "word" | "eos" | "limit", when asked for

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            raise UpstreamError(message)
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or ():
            events.extend(self._choice(choice))
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        if chunk.get("timings"):
            self.timings = _timings(chunk["timings"])
        verbose = chunk.get("__verbose")
        if isinstance(verbose, dict) and isinstance(verbose.get("stop_type"), str):
            self.stop_type = verbose["stop_type"]
        return events

    def _choice(self, choice: dict[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        delta = choice.get("delta") or {}
        text = choice.get("text")  # legacy completions
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        content = delta.get("content") or text
        tokens = self._tokens(choice.get("logprobs"))
        if content or tokens:
            events.append(TextDelta(content or "", tokens))
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            events.append(
                ToolCallDelta(
                    index=int(call.get("index", 0)),
                    arguments=function.get("arguments") or "",
                    id=call.get("id"),
                    name=function.get("name"),
                )
            )
        if choice.get("finish_reason"):
            self.finish_reason = FINISH_REASONS.get(choice["finish_reason"], "stop")
        return events

    def _tokens(self, logprobs: dict[str, Any] | None) -> list[TokenInfo] | None:
        if not logprobs or not isinstance(logprobs.get("content"), list):
            return None
        tokens = [
            TokenInfo(int(t["id"]), str(t.get("token", "")), t.get("logprob")) for t in logprobs["content"] if "id" in t
        ]
        self.tokens_seen = (self.tokens_seen or 0) + len(tokens)
        return tokens

    def done(self) -> Done:
        return Done(self.finish_reason, self.usage, self.timings, self._stop_sequence())

    def _stop_sequence(self) -> bool | None:
        """llama-server's native stop_type says it exactly; without it, a stop string's tokens may be missing."""
        if self.finish_reason != "stop":
            return None
        if self.stop_type in ("word", "eos"):
            return self.stop_type == "word"
        if self.usage is None or self.tokens_seen is None:
            return None
        return self.usage.completion_tokens > self.tokens_seen


class UpstreamError(Exception):
    """The upstream reported an error inside its stream."""


def _usage(raw: dict[str, Any]) -> Usage:
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens", 0)),
        completion_tokens=int(raw.get("completion_tokens", 0)),
        cached_tokens=details.get("cached_tokens"),
    )


def _timings(raw: dict[str, Any]) -> Timings:
    return Timings(
        prompt_ms=raw.get("prompt_ms"),
        predicted_ms=raw.get("predicted_ms"),
        prompt_per_second=raw.get("prompt_per_second"),
        predicted_per_second=raw.get("predicted_per_second"),
    )
