"""Ollama dialect: a pure translator, no I/O.

Requests (``/api/chat``, ``/api/generate``, ``/api/embed``) become internal requests; internal events become
NDJSON objects (one JSON object per line, never a blank line; api-compat §0 rules 4-6, §4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import Field

from llmhost.durations import parse_duration
from llmhost.protocols.openai import Accumulator, Wire, validate_wire
from llmhost.types import (
    ChatRequest,
    CompletionRequest,
    Done,
    EmbedRequest,
    InvalidRequest,
    LlmhostError,
    Message,
    ModelNotFound,
    ReasoningDelta,
    Sampling,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
)

FOREVER = "2318-11-23T00:00:00Z"  # Ollama shows keep_alive < 0 as an expiry far in the future
NS = 1_000_000_000
API_VERSION = "0.12.6"  # the Ollama API level llmhost speaks; clients compare it against their minimum


# Wire models -----------------------------------------------------------------------------------


class WireFunctionCall(Wire):
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class WireToolCall(Wire):
    id: str | None = None
    function: WireFunctionCall


class WireMessage(Wire):
    role: str
    content: str | None = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[WireToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


class WireToolFunction(Wire):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class WireTool(Wire):
    type: str = "function"
    function: WireToolFunction


class WireGenerationFields(Wire):
    model: str = Field(min_length=1)
    stream: bool | None = None
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    keep_alive: str | float | None = None
    think: bool | Literal["low", "medium", "high", "max"] | None = None


class WireChatRequest(WireGenerationFields):
    messages: list[WireMessage] = Field(default_factory=list)
    tools: list[WireTool] | None = None


class WireGenerateRequest(WireGenerationFields):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None


class WireEmbedRequest(Wire):
    model: str = Field(min_length=1)
    input: str | list[str] | None = None
    truncate: bool = True
    dimensions: int | None = Field(None, ge=1)
    options: dict[str, Any] | None = None
    keep_alive: str | float | None = None


class WireEmbeddingsRequest(Wire):
    model: str = Field(min_length=1)
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: str | float | None = None


# Requests --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Generation:
    """What an Ollama generation request asks beyond the internal request itself."""

    stream: bool
    load_only: bool  # empty prompt / no messages: load the model (and unload with keep_alive 0)
    keep_alive: float | None
    system: str | None = None  # /api/generate with raw: prompt used verbatim


def parse_chat(body: Any) -> tuple[ChatRequest, Generation]:
    wire = validate_wire(WireChatRequest, body)
    sampling = parse_options(wire.options)
    _apply_format(wire.format, sampling)
    keep_alive = parse_duration(wire.keep_alive)
    req = ChatRequest(
        model=wire.model,
        messages=[_message(m, i) for i, m in enumerate(wire.messages)],
        sampling=sampling,
        stream=wire.stream is not False,
        tools=[_tool(t) for t in wire.tools or []],
        keep_alive=keep_alive,
        think=_think(wire.think),
    )
    return req, Generation(req.stream, not wire.messages, keep_alive)


def parse_generate(body: Any) -> tuple[ChatRequest | CompletionRequest, Generation]:
    """``raw`` prompts go to the engine as they are; others are a one-turn chat (the engine's template)."""
    wire = validate_wire(WireGenerateRequest, body)
    if wire.raw and (wire.template or wire.system or wire.context):
        raise InvalidRequest("raw mode does not support template, system, or context")
    if wire.suffix:
        raise InvalidRequest(f'"{wire.model}" does not support insert')
    sampling = parse_options(wire.options)
    _apply_format(wire.format, sampling)
    keep_alive = parse_duration(wire.keep_alive)
    stream = wire.stream is not False
    generation = Generation(stream, not wire.prompt, keep_alive)
    if wire.raw:
        return CompletionRequest(wire.model, wire.prompt, sampling, stream, keep_alive=keep_alive), generation
    messages = [Message("system", wire.system)] if wire.system else []
    messages.append(Message("user", wire.prompt, images=list(wire.images or [])))
    req = ChatRequest(wire.model, messages, sampling, stream, keep_alive=keep_alive, think=_think(wire.think))
    return req, generation


def parse_embed(body: Any) -> tuple[EmbedRequest, int | None]:
    wire = validate_wire(WireEmbedRequest, body)
    raw = wire.input
    inputs = [raw] if isinstance(raw, str) else list(raw or [])
    if any(not item for item in inputs):
        raise InvalidRequest("input must not contain empty strings")
    return EmbedRequest(wire.model, inputs, parse_duration(wire.keep_alive)), wire.dimensions


def parse_embeddings(body: Any) -> EmbedRequest:
    wire = validate_wire(WireEmbeddingsRequest, body)
    return EmbedRequest(wire.model, [wire.prompt] if wire.prompt else [], parse_duration(wire.keep_alive))


def model_name(body: Any) -> str:
    """``model``, or the legacy ``name`` that show/delete/pull still accept."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    name = body.get("model") or body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("model is required")
    return name


def _message(wire: WireMessage, index: int) -> Message:
    role = wire.role.lower()
    if role not in ("system", "user", "assistant", "tool"):
        raise InvalidRequest(f"messages.{index}.role: invalid role {wire.role!r}")
    calls = [
        ToolCall(
            call.id or f"call_{index}_{n}",
            call.function.name,
            call.function.arguments
            if isinstance(call.function.arguments, str)
            else orjson.dumps(call.function.arguments).decode(),
        )
        for n, call in enumerate(wire.tool_calls or [])
    ]
    return Message(
        role=role,  # type: ignore[arg-type]
        content=wire.content,
        reasoning=wire.thinking,
        tool_calls=calls,
        tool_call_id=wire.tool_call_id or (f"call_{wire.tool_name}" if role == "tool" else None),
        name=wire.tool_name,
        images=list(wire.images or []),
    )


def _tool(wire: WireTool) -> Tool:
    parameters = wire.function.parameters or {"type": "object", "properties": {}}
    return Tool(wire.function.name, wire.function.description or "", parameters)


def _think(value: bool | str | None) -> bool | None:
    return None if value is None else bool(value)


def _apply_format(value: str | dict[str, Any] | None, sampling: Sampling) -> None:
    if value in (None, ""):
        return
    if value == "json":
        sampling.json_object = True
    elif isinstance(value, dict):
        sampling.json_schema = value
    else:
        raise InvalidRequest(f'invalid format: {value!r}; use "json" or a JSON schema object', param="format")


# Options ---------------------------------------------------------------------------------------

_INT, _FLOAT, _LIST = "integer", "float", "list"
OPTION_TYPES: dict[str, str] = {
    "num_predict": _INT,
    "temperature": _FLOAT,
    "top_k": _INT,
    "top_p": _FLOAT,
    "min_p": _FLOAT,
    "typical_p": _FLOAT,
    "repeat_penalty": _FLOAT,
    "repeat_last_n": _INT,
    "presence_penalty": _FLOAT,
    "frequency_penalty": _FLOAT,
    "seed": _INT,
    "stop": _LIST,
}
# Accepted and ignored: engine-level settings belong to the model's profile, and keys current Ollama dropped.
IGNORED_OPTIONS = frozenset(
    [
        "num_ctx",
        "num_keep",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "use_mmap",
        "use_mlock",
        "numa",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "embedding_only",
        "tfs_z",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
        "penalize_newline",
        "draft_num_predict",
    ]
)


def parse_options(options: Mapping[str, Any] | None) -> Sampling:
    """Ollama ``options`` → sampling; unknown keys are ignored (as Ollama does), wrong types are a 400."""
    values = {key: _typed_option(key, value) for key, value in (options or {}).items() if key in OPTION_TYPES}
    grammar = (options or {}).get("grammar")  # llmhost extra: a GBNF grammar, as llama.cpp takes it
    if grammar is not None and not isinstance(grammar, str):
        raise InvalidRequest('option "grammar" must be of type string')
    num_predict = values.get("num_predict")
    seed = values.get("seed")
    return Sampling(
        max_tokens=num_predict if num_predict is not None and num_predict > 0 else None,
        temperature=values.get("temperature"),
        top_p=values.get("top_p"),
        top_k=values.get("top_k"),
        min_p=values.get("min_p"),
        typical_p=values.get("typical_p"),
        repeat_penalty=values.get("repeat_penalty"),
        repeat_last_n=values.get("repeat_last_n"),
        presence_penalty=values.get("presence_penalty"),
        frequency_penalty=values.get("frequency_penalty"),
        seed=seed if seed is not None and seed >= 0 else None,
        stop=values.get("stop") or [],
        grammar=grammar,
    )


INT32 = 2**31  # engines take 32-bit integers; bigger ones would wrap or fail to serialise


def _typed_option(key: str, value: Any) -> Any:
    kind = OPTION_TYPES[key]
    if value is None:
        return None
    if kind == _LIST:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        if kind == _FLOAT:
            return float(value)
        if float(value).is_integer() and -INT32 <= value < INT32:
            return int(value)
    type_name = "array of strings" if kind == _LIST else kind
    if kind == _INT:
        type_name = f"integer (between {-INT32} and {INT32 - 1})"
    raise InvalidRequest(f'option "{key}" must be of type {type_name}')


# Responses -------------------------------------------------------------------------------------


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def rfc3339(unix: float | None) -> str:
    if unix is None:
        return FOREVER
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def ndjson(payload: Mapping[str, Any]) -> bytes:
    return orjson.dumps(payload) + b"\n"


def done_reason(done: Done) -> str:
    return "length" if done.finish_reason == "length" else "stop"


def metrics(done: Done, total_seconds: float, load_seconds: float) -> dict[str, int]:
    """The final object's counters; zero values are left out, as Ollama's ``omitempty`` does."""
    usage, timings = done.usage, done.timings
    values = {
        "total_duration": round(total_seconds * NS),
        "load_duration": round(load_seconds * NS),
        "prompt_eval_count": usage.prompt_tokens if usage else 0,
        "prompt_eval_duration": round((timings.prompt_ms or 0) * 1e6) if timings else 0,
        "eval_count": usage.completion_tokens if usage else 0,
        "eval_duration": round((timings.predicted_ms or 0) * 1e6) if timings else 0,
    }
    return {key: value for key, value in values.items() if value}


def tool_calls_wire(calls: Mapping[int, Mapping[str, str]]) -> list[dict[str, Any]]:
    """Ollama tool calls: whole, with ``arguments`` as an object (never a string; api-compat §0 rule 5)."""
    return [
        {"id": call["id"], "function": {"index": index, "name": call["name"], "arguments": _arguments(call)}}
        for index, call in sorted(calls.items())
    ]


def _arguments(call: Mapping[str, str]) -> dict[str, Any]:
    try:
        value = orjson.loads(call["arguments"] or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class OllamaStream:
    """Internal events → Ollama NDJSON objects, for /api/chat (``message``) or /api/generate (``response``).

    Tool calls are gathered and sent whole in one chunk before the final object, as Ollama sends them.
    """

    def __init__(self, model: str, kind: Literal["chat", "generate"], started: float) -> None:
        self.model = model
        self.kind = kind
        self.started = started
        self.load_seconds = 0.0
        self.gathered = Accumulator()  # the whole answer when not streamed; the tool calls when streamed

    def _object(self, content: str, thinking: str | None = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "created_at": now_rfc3339()}
        if self.kind == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            if "tool_calls" in extra:
                message["tool_calls"] = extra.pop("tool_calls")
            body["message"] = message
        else:
            body["response"] = content
            if thinking:
                body["thinking"] = thinking
        body.update(extra)
        return body

    def event(self, event: StreamEvent) -> bytes | None:
        if isinstance(event, TextDelta):
            return ndjson(self._object(event.text, done=False)) if event.text else None
        if isinstance(event, ReasoningDelta):
            return ndjson(self._object("", event.text, done=False))
        if isinstance(event, ToolCallDelta):
            self.gathered.add(event)
            return None
        calls = self.gathered.tool_calls
        head = ndjson(self._object("", tool_calls=tool_calls_wire(calls), done=False)) if calls else b""
        return head + ndjson(self.final(event, ""))

    def final(self, done: Done, content: str, thinking: str | None = None, **extra: Any) -> dict[str, Any]:
        total = time.monotonic() - self.started
        return self._object(
            content,
            thinking,
            **extra,
            done=True,
            done_reason=done_reason(done),
            **metrics(done, total, self.load_seconds),
        )

    def whole(self) -> dict[str, Any]:
        """The non-streamed answer from everything ``gathered`` holds."""
        acc = self.gathered
        extra = {"tool_calls": tool_calls_wire(acc.tool_calls)} if acc.tool_calls else {}
        return self.final(acc.done or Done("stop"), "".join(acc.text), "".join(acc.reasoning) or None, **extra)

    def load_answer(self, reason: Literal["load", "unload"]) -> dict[str, Any]:
        return self._object("", done=True, done_reason=reason)

    def error(self, error: LlmhostError) -> bytes:
        return ndjson(error_body(error))


def normalise(vector: list[float], dimensions: int | None = None) -> list[float]:
    """L2-normalised, after truncation to ``dimensions`` (Ollama normalises /api/embed vectors)."""
    if dimensions is not None:
        vector = vector[:dimensions]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


# Models ----------------------------------------------------------------------------------------


def details(family: str | None, parameter_size: str | None, quantization: str | None) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family or "",
        "families": [family] if family else [],
        "parameter_size": parameter_size or "",
        "quantization_level": quantization or "",
    }


def ps_model(
    *,
    name: str,
    digest: str,
    size: int,
    size_vram: int,
    expires_at: float | None,
    context_length: int,
    family: str | None,
    parameter_size: str | None,
    quantization: str | None,
) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "size": size,
        "digest": digest,
        "details": details(family, parameter_size, quantization),
        "expires_at": rfc3339(expires_at),
        "size_vram": size_vram,
        "context_length": context_length,
    }


def parameter_size(count: int | None) -> str | None:
    if not count:
        return None
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}".replace(".0", "")
    return str(count)


HIDDEN_INFO_KEYS = frozenset({"general.name", "tokenizer.chat_template"})


def model_info(fields: Mapping[str, Any], parameter_count: int | None, verbose: bool) -> dict[str, Any]:
    """GGUF header fields as /api/show's ``model_info``; long arrays become [] unless ``verbose``."""
    info: dict[str, Any] = {}
    for key, value in fields.items():
        if key in HIDDEN_INFO_KEYS or key.startswith("GGUF."):
            continue
        if isinstance(value, list | tuple):
            value = list(value) if verbose or len(value) <= 5 else []
        elif not isinstance(value, str | int | float | bool):
            value = []  # arrays the header reader skipped without reading them
        info[key] = value
    if parameter_count:
        info["general.parameter_count"] = parameter_count
    return info


def parameters_text(params: Mapping[str, Any] | None) -> str:
    """Modelfile-style ``key value`` lines, one per value (lists repeat their key)."""
    lines = []
    for key, value in (params or {}).items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key:<30} {orjson.dumps(item).decode() if isinstance(item, str) else item}")
    return "\n".join(lines)


def error_body(error: LlmhostError) -> dict[str, Any]:
    """Ollama errors are a bare string; a missing model reads as Ollama words it."""
    if isinstance(error, ModelNotFound):
        return {"error": f"model '{error.model}' not found"}
    return {"error": error.message}
