"""The target server's own tokenizer, for prompts of an exact token length.

Two dialects exist: llama-server's (``/tokenize {content}``, ``/detokenize``, ``/apply-template``) and vLLM's
(``/tokenize {model, prompt | messages}``, ``/detokenize {model, tokens}``), which llmhost also speaks.
``detect_tokenizer`` tries both at the server root and returns None when neither answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import httpx

from llmhost.bench.client import Target

PROBE_TEXT = "Hello world"


class ServerTokenizer(ABC):
    dialect: str

    def __init__(self, client: httpx.AsyncClient, target: Target) -> None:
        self.client = client
        self.target = target

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.client.post(f"{self.target.root}{path}", json=body, timeout=30.0)
        response.raise_for_status()
        return response.json()

    @abstractmethod
    async def encode(self, text: str) -> list[int]: ...

    @abstractmethod
    async def decode(self, tokens: list[int]) -> str: ...

    @abstractmethod
    async def count_chat(self, content: str) -> int:
        """Prompt tokens of a chat request with one user message (template included)."""

    async def count_prompt(self, text: str) -> int:
        """Prompt tokens of a request as the target's API sends it (chat or completions)."""
        if self.target.api == "chat":
            return await self.count_chat(text)
        return len(await self.encode(text))


class LlamaCppTokenizer(ServerTokenizer):
    dialect = "llama.cpp"

    async def encode(self, text: str) -> list[int]:
        return [int(token) for token in (await self._post("/tokenize", {"content": text}))["tokens"]]

    async def decode(self, tokens: list[int]) -> str:
        return str((await self._post("/detokenize", {"tokens": tokens}))["content"])

    async def count_chat(self, content: str) -> int:
        rendered = await self._post("/apply-template", {"messages": [{"role": "user", "content": content}]})
        return len(await self.encode(str(rendered["prompt"])))


class VllmTokenizer(ServerTokenizer):
    dialect = "vllm"

    async def encode(self, text: str) -> list[int]:
        body = {"model": self.target.model, "prompt": text, "add_special_tokens": False}
        return [int(token) for token in (await self._post("/tokenize", body))["tokens"]]

    async def decode(self, tokens: list[int]) -> str:
        return str((await self._post("/detokenize", {"model": self.target.model, "tokens": tokens}))["prompt"])

    async def count_chat(self, content: str) -> int:
        body = {"model": self.target.model, "messages": [{"role": "user", "content": content}]}
        return len((await self._post("/tokenize", body))["tokens"])


async def detect_tokenizer(client: httpx.AsyncClient, target: Target) -> ServerTokenizer | None:
    for kind in (LlamaCppTokenizer, VllmTokenizer):
        tokenizer = kind(client, target)
        try:
            if await tokenizer.encode(PROBE_TEXT) and await tokenizer.decode(await tokenizer.encode(PROBE_TEXT)):
                await tokenizer.count_prompt(PROBE_TEXT)
                return tokenizer
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            continue
    return None
