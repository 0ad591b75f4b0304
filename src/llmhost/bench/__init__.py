"""Benchmarks: a load generator for any OpenAI-compatible endpoint, with the documented metric definitions."""
