"""The internal protocol: what every dialect translates to and from.

The core (router, engines, providers) speaks only these types. Dialect modules in ``protocols/`` are
pure functions between wire JSON and these objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "tool_calls", "error"]


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI carries it


@dataclass(slots=True)
class Message:
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    images: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(slots=True)
class Sampling:
    """Sampling parameters; None means "engine default"."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repeat_last_n: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repeat_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    min_tokens: int | None = None
    ignore_eos: bool = False
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    token_details: bool = False  # ask the engine for each token's id and logprob (TGI ``details``)


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message]
    sampling: Sampling = field(default_factory=Sampling)
    stream: bool = False
    tools: list[Tool] = field(default_factory=list)
    tool_choice: Literal["auto", "none", "required"] | str = "auto"  # or a tool name
    include_usage: bool = False
    keep_alive: float | None = None  # seconds the model stays loaded after this request; <0 = forever
    think: bool | None = None  # Ollama ``think``: None = the model's default, False = no reasoning


@dataclass(slots=True)
class CompletionRequest:
    model: str
    prompt: str | list[int]
    sampling: Sampling = field(default_factory=Sampling)
    stream: bool = False
    include_usage: bool = False
    echo: bool = False
    keep_alive: float | None = None


@dataclass(slots=True)
class EmbedRequest:
    model: str
    inputs: list[str] | list[list[int]]
    keep_alive: float | None = None


@dataclass(slots=True)
class TokenizeRequest:
    model: str
    prompt: str | None = None
    messages: list[Message] | None = None  # the chat form: rendered with the model's template first
    add_special: bool = True
    with_pieces: bool = False


@dataclass(slots=True)
class Tokenized:
    tokens: list[int]
    pieces: list[str] | None
    max_model_len: int


@dataclass(slots=True)
class DetokenizeRequest:
    model: str
    tokens: list[int]


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Timings:
    """What the engine measured (llama-server ``timings``), in milliseconds."""

    prompt_ms: float | None = None
    predicted_ms: float | None = None
    prompt_per_second: float | None = None
    predicted_per_second: float | None = None


# Stream events -------------------------------------------------------------------------------


@dataclass(slots=True)
class TokenInfo:
    """One generated token as the engine reported it."""

    id: int
    text: str
    logprob: float | None = None


@dataclass(slots=True)
class TextDelta:
    text: str
    tokens: list[TokenInfo] | None = None  # only when the request asked for token details


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """One tool call; ``id`` and ``name`` set on its first delta only, ``arguments`` a fragment."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass(slots=True)
class Done:
    finish_reason: FinishReason
    usage: Usage | None = None
    timings: Timings | None = None
    stop_sequence: bool | None = None  # True: a stop string ended it; False: end-of-sequence; None: unknown


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | Done
EventStream = AsyncIterator[StreamEvent]


@dataclass(slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


# Errors --------------------------------------------------------------------------------------

ErrorKind = Literal["invalid_request", "not_found", "unavailable", "overloaded", "engine_error", "timeout", "too_large"]


class LlmhostError(Exception):
    """An error every dialect knows how to render."""

    status: int = 500
    kind: ErrorKind = "engine_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.retryable = retryable


class InvalidRequest(LlmhostError):
    status = 400
    kind = "invalid_request"


class RequestTooLarge(LlmhostError):
    status = 413
    kind = "too_large"


class ModelNotFound(LlmhostError):
    status = 404
    kind = "not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model `{model}` does not exist.", param="model", code="model_not_found")
        self.model = model


class Overloaded(LlmhostError):
    """Every slot is busy and the queue is full."""

    status = 429
    kind = "overloaded"


class QueueTimeout(LlmhostError):
    """Waited in the queue longer than allowed."""

    status = 503
    kind = "unavailable"


class EngineUnavailable(LlmhostError):
    """The engine could not be started or is restarting; retrying later can help."""

    status = 503
    kind = "unavailable"


class EngineFailed(LlmhostError):
    """The engine failed while serving this request."""

    status = 502
    kind = "engine_error"


class Unauthorized(LlmhostError):
    """No API key, or one that matches none."""

    status = 401
    kind = "invalid_request"


class PermissionDenied(LlmhostError):
    """The request is understood but llmhost will not do it (e.g. delete a file it does not own)."""

    status = 403
    kind = "invalid_request"
