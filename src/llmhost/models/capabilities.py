"""What a model can do, as Ollama's ``capabilities`` lists it: from its profile and its chat template."""

from __future__ import annotations

from llmhost.config import ModelProfile
from llmhost.engines.llamaserver import embeddings_enabled
from llmhost.models.catalog import ModelEntry

# Chat templates of thinking models mention one of these (Qwen3, DeepSeek-R1, gpt-oss, ...).
THINKING_MARKERS = ("<think>", "enable_thinking", "reasoning_content", "thinking")


def supports_thinking(entry: ModelEntry, profile: ModelProfile) -> bool:
    if profile.thinking is not None:
        return profile.thinking
    template = (entry.meta.chat_template if entry.meta else None) or entry.template or ""
    return any(marker in template for marker in THINKING_MARKERS)


def capabilities(entry: ModelEntry, profile: ModelProfile) -> list[str]:
    found = ["completion"]
    if profile.tool_calls == "prompt" or "tools" in ((entry.meta.chat_template if entry.meta else None) or ""):
        found.append("tools")  # prompted tool calls work with any chat model
    if supports_thinking(entry, profile):
        found.append("thinking")
    if profile.embeddings and embeddings_enabled(profile):
        found.append("embedding")
    return found
