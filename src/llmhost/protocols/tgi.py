"""TGI (text-generation-inference v3) dialect: a pure translator, no I/O.

Wire request -> internal request (``parse_generate``), internal events -> TGI JSON and SSE bytes
(``GenerateStream``, ``Accumulator`` + ``render_generate``), plus ``/info`` and the error bodies.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmhost.types import (
    CompletionRequest,
    Done,
    InvalidRequest,
    LlmhostError,
    Sampling,
    StreamEvent,
    TextDelta,
    Timings,
    TokenInfo,
    Tokenized,
    TokenizeRequest,
)

# Routes that speak TGI; errors on them use TGI's body and statuses.
PATHS = frozenset({"/", "/generate", "/generate_stream", "/info"})

Route = Literal["generate", "generate_stream", "compat"]
TgiFinishReason = Literal["length", "eos_token", "stop_sequence"]

MAX_STOP_SEQUENCES = 4  # TGI's default --max-stop-sequences
MAX_BEST_OF = 1  # one sequence per request: llama-server has no best-of
# TGI's default is max_total_tokens - input_length, generated in chunks of 1024 tokens. Without a tokenizer here
# the input length is unknown, so the default is bounded at TGI's chunk size (the engine stops at its context anyway).
DEFAULT_MAX_NEW_TOKENS = 1024
MAX_SEED = 2**64 - 1  # TGI's seed is a u64
RANDOM_SEED_LIMIT = 2**32 - 1  # llama.cpp seeds are u32 and 0xFFFFFFFF means "pick one"

# Wire models (types only; TGI's value checks and messages are in _validate) --------------------------------------


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class WireGrammar(Wire):
    type: str
    value: Any = None


class WireParameters(Wire):
    best_of: int | None = None
    decoder_input_details: bool = False
    details: bool = False
    do_sample: bool = False  # when the whole ``parameters`` object is absent TGI samples: see parse_generate
    frequency_penalty: float | None = None
    grammar: WireGrammar | None = None
    max_new_tokens: int | None = Field(None, lt=2**31)
    repetition_penalty: float | None = None
    return_full_text: bool | None = None
    seed: int | None = Field(None, lt=2**63)
    stop: list[str] = Field(default_factory=list)
    temperature: float | None = None
    top_k: int | None = Field(None, lt=2**31)
    top_n_tokens: int | None = None
    top_p: float | None = None
    truncate: int | None = None
    typical_p: float | None = None
    watermark: bool = False
    adapter_id: str | None = None


class WireGenerateRequest(Wire):
    inputs: str
    parameters: WireParameters | None = None
    stream: bool = False


@dataclass(slots=True)
class GenerateOptions:
    """What rendering needs from the request besides the internal events."""

    inputs: str
    details: bool = False
    return_full_text: bool = False
    seed: int | None = None  # the seed the engine used when sampling; TGI reports null for greedy decoding
    stream: bool = False


# Parsing ----------------------------------------------------------------------------------------------------------


def parse_generate(body: Any, model: str, route: Route) -> tuple[CompletionRequest, GenerateOptions]:
    """``/generate``, ``/generate_stream`` or ``POST /`` body -> internal request and rendering options."""
    wire = _validate_wire(body)
    params = wire.parameters or WireParameters(do_sample=True)  # TGI's default_parameters() samples
    stream = route == "generate_stream" or (route == "compat" and wire.stream)
    _validate(wire.inputs, params, stream)
    sampling = _sampling(params)
    full_text = params.return_full_text
    if full_text is None:
        full_text = route == "compat"  # POST / defaults to true for a text-generation model (TGI compat_generate)
    options = GenerateOptions(
        inputs=wire.inputs,
        details=params.details,
        return_full_text=full_text,
        seed=sampling.seed if _samples(params) else None,
        stream=stream,
    )
    return CompletionRequest(model=model, prompt=wire.inputs, sampling=sampling, stream=stream), options


def _validate_wire(body: Any) -> WireGenerateRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if "parameters" in body and body["parameters"] is None:  # lenient: null means "not given"
        body = {key: value for key, value in body.items() if key != "parameters"}
    try:
        return WireGenerateRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"Failed to deserialize the JSON body: `{where}`: {first['msg']}", param=where) from exc


def _validate(inputs: str, params: WireParameters, stream: bool) -> None:
    """TGI's checks, in TGI's order and with its messages (``router/src/validation.rs``)."""
    if stream and params.best_of is not None and params.best_of > 1:
        _invalid("`best_of` != 1 is not supported when streaming tokens", "best_of")
    if stream and params.decoder_input_details:
        _invalid("`decoder_input_details` == true is not supported when streaming tokens", "decoder_input_details")
    _check_best_of(params)
    _check_positive(params.temperature, "temperature")
    _check_positive(params.repetition_penalty, "repetition_penalty")
    if params.frequency_penalty is not None and not -2.0 <= params.frequency_penalty <= 2.0:
        _invalid("`frequency_penalty` must be >= -2.0 and <= 2.0", "frequency_penalty")
    _check_open_unit(params.top_p, "top_p")
    _check_open_unit(params.typical_p, "typical_p")
    _check_positive(params.top_k, "top_k")
    _check_positive(params.max_new_tokens, "max_new_tokens")
    if len(params.stop) > MAX_STOP_SEQUENCES:
        _invalid(f"`stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. Given: {len(params.stop)}", "stop")
    if params.seed is not None and not 0 <= params.seed <= MAX_SEED:
        _invalid(f"`seed` must be >= 0 and <= {MAX_SEED}. Given: {params.seed}", "seed")
    if params.top_n_tokens:
        _invalid("`top_n_tokens` != 0 is not allowed for this endpoint (top tokens are not reported)", "top_n_tokens")
    if not inputs:
        _invalid("`inputs` cannot be empty", "inputs")
    if params.truncate is not None and params.truncate <= 0:
        _invalid(f"`truncate` must be strictly positive. Given: {params.truncate}", "truncate")
    if params.decoder_input_details:
        _invalid("`decoder_input_details` == true is not supported (prompt token logprobs are not reported)")


def _check_best_of(params: WireParameters) -> None:
    if params.best_of is None or params.best_of == MAX_BEST_OF:
        return
    if params.best_of <= 0:
        _invalid(f"`best_of` must be > 0 and <= {MAX_BEST_OF}. Given: {params.best_of}", "best_of")
    _invalid("`best_of` != 1 is not allowed for this endpoint (one sequence is generated per request)", "best_of")


def _check_positive(value: float | None, name: str) -> None:
    if value is not None and value <= 0:
        _invalid(f"`{name}` must be strictly positive", name)


def _check_open_unit(value: float | None, name: str) -> None:
    if value is not None and not 0.0 < value < 1.0:
        _invalid(f"`{name}` must be > 0.0 and < 1.0", name)


def _invalid(message: str, param: str | None = None) -> NoReturn:
    raise InvalidRequest(message, param=param)


def _samples(params: WireParameters) -> bool:
    """TGI samples when asked to or when any warper is set; otherwise it decodes greedily."""
    warpers = (params.temperature, params.top_k, params.top_p, params.typical_p)
    return params.do_sample or any(value is not None for value in warpers)


def _sampling(params: WireParameters) -> Sampling:
    # watermark, truncate and adapter_id are accepted and ignored, as a TGI without those features would.
    sampling = Sampling(
        max_tokens=params.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
        temperature=params.temperature,
        top_k=params.top_k,
        top_p=params.top_p,
        typical_p=params.typical_p,
        stop=[stop for stop in params.stop if stop],
        seed=params.seed,
        frequency_penalty=params.frequency_penalty,
        repeat_penalty=params.repetition_penalty,
        token_details=True,
    )
    if not _samples(params):
        sampling.temperature, sampling.top_k = 0.0, 1
    elif sampling.seed is None:
        sampling.seed = secrets.randbelow(RANDOM_SEED_LIMIT)  # like TGI: a fresh seed, reported in details.seed
    _apply_grammar(params.grammar, sampling)
    return sampling


def _apply_grammar(grammar: WireGrammar | None, sampling: Sampling) -> None:
    if grammar is None:
        return
    if grammar.type == "regex":
        _invalid("grammar is not supported: `regex` grammars cannot be enforced by this engine; use `json`", "grammar")
    if grammar.type not in ("json", "json_object", "json_schema"):
        _invalid(f"grammar is not valid: unknown type `{grammar.type}` (use json, json_object or json_schema)")
    value = _json_value(grammar.value)
    if grammar.type == "json_schema":
        value = value.get("schema") if isinstance(value, dict) else None
    if not isinstance(value, dict):
        _invalid("grammar is not valid: the value must be a JSON schema object", "grammar")
    if value:
        sampling.json_schema = value
    else:
        sampling.json_object = True  # an empty schema: any JSON object


def _json_value(value: Any) -> Any:
    """TGI accepts the schema as an object or as a string of JSON."""
    if not isinstance(value, str):
        return {} if value is None else value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"grammar is not valid: {exc}", param="grammar") from exc


# Rendering --------------------------------------------------------------------------------------------------------


def finish_reason(done: Done) -> TgiFinishReason:
    if done.finish_reason == "length":
        return "length"
    return "stop_sequence" if done.stop_sequence else "eos_token"


def _tokens(delta: TextDelta) -> list[TokenInfo]:
    if delta.tokens is not None:
        return delta.tokens
    # An engine that did not report token ids: the text still has to reach the client, as one token of unknown id.
    return [TokenInfo(0, delta.text)] if delta.text else []


def _ends_with_eos(done: Done, last: TokenInfo) -> bool:
    """The engine reports the end-of-sequence token itself, with empty text (special tokens are not rendered)."""
    return finish_reason(done) == "eos_token" and done.stop_sequence is False and last.text == ""


def token_dict(token: TokenInfo, special: bool = False) -> dict[str, Any]:
    return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": special}


def _generated_tokens(done: Done, count: int) -> int:
    return done.usage.completion_tokens if done.usage is not None else count


def sse(payload: dict[str, Any]) -> bytes:
    """TGI (axum) writes ``data:`` without a space, and never a ``[DONE]``."""
    return b"data:" + orjson.dumps(payload) + b"\n\n"


def error_event(error: LlmhostError) -> bytes:
    return sse(error_body(error))


class GenerateStream:
    """Internal events -> ``/generate_stream`` SSE records.

    TGI's last record carries a real token *and* ``generated_text``/``details``, but the engine says it is done only
    after its last token. So exactly one token is held back and sent with the final record once ``Done`` arrives.
    """

    def __init__(self, options: GenerateOptions) -> None:
        self.options = options
        self._pending: TokenInfo | None = None
        self._index = 0
        self._text: list[str] = []

    def event(self, event: StreamEvent) -> bytes | None:
        if isinstance(event, TextDelta):
            return self._delta(event)
        if isinstance(event, Done):
            return self.finish(event)
        return None

    def _delta(self, delta: TextDelta) -> bytes | None:
        self._text.append(delta.text)
        out = b""
        for token in _tokens(delta):
            out += self._flush()
            self._pending = token
        return out or None

    def _flush(self) -> bytes:
        if self._pending is None:
            return b""
        token, self._pending = self._pending, None
        return self._record(token_dict(token), None, None)

    def _record(self, token: dict[str, Any], text: str | None, details: dict[str, Any] | None) -> bytes:
        self._index += 1
        return sse({"index": self._index, "token": token, "generated_text": text, "details": details})

    def finish(self, done: Done) -> bytes:
        last = self._pending
        self._pending = None
        if last is None:  # the engine reported no token at all: TGI's last record still needs one
            token = {"id": 0, "text": "", "logprob": None, "special": True}
        else:
            token = token_dict(last, special=_ends_with_eos(done, last))
        text = _full_text(self.options, "".join(self._text))
        return self._record(token, text, self._details(done) if self.options.details else None)

    def _details(self, done: Done) -> dict[str, Any]:
        details: dict[str, Any] = {
            "finish_reason": finish_reason(done),
            "generated_tokens": _generated_tokens(done, self._index),
            "seed": self.options.seed,
        }
        if done.usage is not None:
            details["input_length"] = done.usage.prompt_tokens
        return details

    def error(self, error: LlmhostError) -> bytes:
        """The held-back token was generated, so it goes out before the error."""
        return self._flush() + error_event(error)


@dataclass(slots=True)
class Accumulator:
    """Collects a whole event stream for a non-streamed answer."""

    text: list[str] = field(default_factory=list)
    tokens: list[TokenInfo] = field(default_factory=list)
    done: Done | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
            self.tokens.extend(_tokens(event))
        elif isinstance(event, Done):
            self.done = event


def render_generate(acc: Accumulator, options: GenerateOptions) -> dict[str, Any]:
    """One GenerateResponse; ``POST /`` wraps it in a list."""
    body: dict[str, Any] = {"generated_text": _full_text(options, "".join(acc.text))}
    if options.details:
        body["details"] = _response_details(acc, options)
    return body


def _response_details(acc: Accumulator, options: GenerateOptions) -> dict[str, Any]:
    done = acc.done or Done("stop")
    tokens = [token_dict(token) for token in acc.tokens]
    if acc.tokens and _ends_with_eos(done, acc.tokens[-1]):
        tokens[-1]["special"] = True
    return {
        "finish_reason": finish_reason(done),
        "generated_tokens": _generated_tokens(done, len(acc.tokens)),
        "seed": options.seed,
        "prefill": [],
        "tokens": tokens,
    }


def _full_text(options: GenerateOptions, generated: str) -> str:
    return options.inputs + generated if options.return_full_text else generated


def response_headers(acc: Accumulator, options: GenerateOptions, total_s: float, validation_s: float) -> dict[str, str]:
    """TGI's timing and count headers, only for the values the engine actually measured."""
    headers = {
        "x-compute-time": f"{total_s:.6f}",
        "x-compute-characters": str(len(options.inputs)),
        "x-total-time": str(round(total_s * 1000)),
        "x-validation-time": str(round(validation_s * 1000)),
    }
    done = acc.done
    if done is not None and done.usage is not None:
        headers["x-prompt-tokens"] = str(done.usage.prompt_tokens)
        headers["x-generated-tokens"] = str(done.usage.completion_tokens)
    inference_ms = _inference_ms(done.timings if done is not None else None)
    if inference_ms is not None:
        headers["x-inference-time"] = str(round(inference_ms))
        if done is not None and done.usage is not None and done.usage.completion_tokens:
            headers["x-time-per-token"] = str(round(inference_ms / done.usage.completion_tokens))
    return headers


def _inference_ms(timings: Timings | None) -> float | None:
    if timings is None or timings.prompt_ms is None or timings.predicted_ms is None:
        return None
    return timings.prompt_ms + timings.predicted_ms


# /info ------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ModelFacts:
    name: str
    ctx: int  # context per slot: TGI's max_total_tokens
    parallel: int
    queue_size: int
    dtype: str | None  # the GGUF quantization, e.g. "Q4_1"


def render_info(model: ModelFacts, version: str) -> dict[str, Any]:
    """The union of TGI v3's and 2.x's ``/info`` fields; null where llmhost has no such value."""
    return {
        "model_id": model.name,
        "model_sha": None,
        "model_dtype": model.dtype,
        "model_device_type": None,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": model.parallel + model.queue_size,
        "max_best_of": MAX_BEST_OF,
        "max_stop_sequences": MAX_STOP_SEQUENCES,
        "max_input_tokens": model.ctx - 1,
        "max_input_length": model.ctx - 1,
        "max_total_tokens": model.ctx,
        "waiting_served_ratio": None,
        "max_batch_total_tokens": model.ctx * model.parallel,
        "max_waiting_tokens": None,
        "max_batch_size": model.parallel,
        "validation_workers": 1,
        "max_client_batch_size": 1,
        "router": "text-generation-router",
        "version": version,
        "sha": None,
        "docker_label": None,
    }


# Errors -----------------------------------------------------------------------------------------------------------

ERROR_TYPES = {
    "invalid_request": "validation",
    "too_large": "validation",
    "not_found": "validation",
    "overloaded": "overloaded",
    "unavailable": "overloaded",
    "timeout": "overloaded",
    "engine_error": "generation",
}


def error_status(error: LlmhostError) -> int:
    """TGI answers validation problems with 422 and generation failures with 424; access errors keep theirs."""
    if error.status in (401, 403):
        return error.status
    if error.kind in ("invalid_request", "not_found"):
        return 422
    if error.kind == "engine_error":
        return 424
    return error.status


def error_body(error: LlmhostError) -> dict[str, Any]:
    if error.status in (401, 403):
        return {"error": error.message}  # TGI's own 401 has no error_type; clients raise their HTTP error
    kind = ERROR_TYPES.get(error.kind, "generation")
    prefix = {"validation": "Input validation error: ", "generation": "Request failed during generation: "}
    return {"error": prefix.get(kind, "") + error.message, "error_type": kind}


def parse_tokenize(body: dict[str, Any], model: str) -> TokenizeRequest:
    inputs = body.get("inputs")
    if not isinstance(inputs, str) or not inputs:
        raise InvalidRequest("`inputs` cannot be empty", param="inputs")
    return TokenizeRequest(model=model, prompt=inputs, add_special=True, with_pieces=True)


def render_tokenize(inputs: str, result: Tokenized) -> list[dict[str, Any]]:
    """TGI's ``[{id, text, start, stop}]``: offsets into ``inputs`` from the pieces' lengths (a special token
    the engine added, which is not in the text, gets an empty span)."""
    tokens = []
    position = 0
    for token_id, piece in zip(result.tokens, result.pieces or [], strict=False):
        found = inputs.startswith(piece, position)
        start = position
        position += len(piece) if found else 0
        tokens.append({"id": token_id, "text": piece, "start": start, "stop": position})
    return tokens
