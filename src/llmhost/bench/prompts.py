"""Prompts of a given token length, cut from real text, each unique (so the prompt cache cannot skip prefill).

With the server's tokenizer the length is exact as the server counts it (chat template included). Without one,
two probe requests calibrate tokens per character from the server's ``usage`` ("calibrated"); when even that
fails, 4 characters per token is assumed ("estimated"). Either way the run records where the length came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httpx

from llmhost.bench import corpus
from llmhost.bench.client import Target, request_body, stream_request
from llmhost.bench.records import RequestRecord
from llmhost.bench.tokenizer import ServerTokenizer, detect_tokenizer

InputSource = Literal["tokenize", "calibrated", "estimated"]
DEFAULT_TOKENS_PER_CHAR = 0.25
OFFSET_STRIDE = 7919  # a prime: successive requests start far apart in the corpus
FIT_ATTEMPTS = 4
PROBE_CHARS = (200, 1200)


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    tokens: int  # the prompt length as the server will count it (exact unless ``estimated``)
    estimated: bool


class PromptBuilder:
    def __init__(
        self,
        target: Target,
        tokenizer: ServerTokenizer | None,
        *,
        source: InputSource,
        tokens_per_char: float = DEFAULT_TOKENS_PER_CHAR,
        overhead: int = 0,
    ) -> None:
        self.target = target
        self.tokenizer = tokenizer
        self.source = source
        self.tokens_per_char = tokens_per_char
        self.overhead = overhead  # tokens the server adds around the text (chat template)

    @classmethod
    async def create(cls, client: httpx.AsyncClient, target: Target) -> PromptBuilder:
        tokenizer = await detect_tokenizer(client, target)
        if tokenizer is not None:
            overhead = await tokenizer.count_prompt("") if target.api == "chat" else 0
            return cls(target, tokenizer, source="tokenize", overhead=overhead)
        calibration = await calibrate(client, target)
        if calibration is None:
            return cls(target, None, source="estimated")
        per_char, overhead = calibration
        return cls(target, None, source="calibrated", tokens_per_char=per_char, overhead=overhead)

    async def build(self, uid: int, tokens: int) -> Prompt:
        """A prompt of ``tokens`` tokens (at least the template's own length), unique to ``uid``."""
        prefix = f"Request {uid}. "
        offset = uid * OFFSET_STRIDE
        if self.tokenizer is None:
            chars = max(1, round((tokens - self.overhead) / self.tokens_per_char) - len(prefix))
            return Prompt(prefix + corpus.excerpt(offset, chars).rstrip(), tokens, estimated=True)
        return await self._exact(self.tokenizer, prefix, offset, tokens)

    async def _exact(self, tokenizer: ServerTokenizer, prefix: str, offset: int, tokens: int) -> Prompt:
        source_text = prefix + corpus.excerpt(offset, int(tokens / DEFAULT_TOKENS_PER_CHAR * 1.5) + 64)
        ids = await tokenizer.encode(source_text)
        take = max(1, tokens - self.overhead)
        text, counted = "", 0
        for _ in range(FIT_ATTEMPTS):
            text = await tokenizer.decode(ids[:take])
            counted = await tokenizer.count_prompt(text)
            if counted == tokens or take <= 1:
                break
            take = max(1, take + tokens - counted)
        return Prompt(text, counted, estimated=False)


async def calibrate(client: httpx.AsyncClient, target: Target) -> tuple[float, int] | None:
    """(tokens per character, template overhead) from the ``usage`` of two one-token requests."""
    counts: list[int] = []
    for chars in PROBE_CHARS:
        body = request_body(target, corpus.excerpt(0, chars), max_tokens=1, ignore_eos=False)
        record = await stream_request(client, target, body, RequestRecord(-1, 0, 1, 0.0))
        if not record.ok or record.prompt_tokens is None:
            return None
        counts.append(record.prompt_tokens)
    per_char = (counts[1] - counts[0]) / (PROBE_CHARS[1] - PROBE_CHARS[0])
    if per_char <= 0:
        return None
    return per_char, max(0, round(counts[0] - per_char * PROBE_CHARS[0]))
