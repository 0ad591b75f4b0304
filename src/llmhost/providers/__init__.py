"""Remote upstreams (vLLM, Ollama, TGI, llama.cpp, any OpenAI-compatible API) served next to local engines."""

from llmhost.providers.pool import ProviderPool
from llmhost.providers.provider import Provider

__all__ = ["Provider", "ProviderPool"]
