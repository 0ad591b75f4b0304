"""llmhost: a self-hosted LLM serving control plane."""

__version__ = "0.1.0"
