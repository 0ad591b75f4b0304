from __future__ import annotations

from pathlib import Path

import pytest

from llmhost.models.names import canonical_name, display_name_for_file, is_weights_file, validate_model_name
from llmhost.types import InvalidRequest


@pytest.mark.parametrize(
    "name",
    [
        "smollm2-135m-instruct:q4_1",
        "hf.co/org/repo:Q4_K_M",
        "library/llama3.2:latest",
        "org/m:7b",
        "registry.ollama.ai/library/x:tag",
        "qwen2.5:0.5b",
        "name with spaces",
        "x...y",
    ],
)
def test_valid_names_pass_unchanged(name: str) -> None:
    assert validate_model_name(name) == name


def test_valid_name_is_stripped() -> None:
    assert validate_model_name("  llama3:8b \n") == "llama3:8b"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "x" * 257,
        "../../etc/passwd",
        "/etc/passwd",
        "a/../b",
        "..",
        ".",
        "./x",
        "x/.",
        "x:..",
        "..:latest",
        "a\x00b",
        "a\nb",
        "a\tb",
        "a\x7fb",
        "a\\b",
        "C:\\models\\x.gguf",
        "C:/models/x.gguf",
        "~/models/x.gguf",
        "~root",
        "a//b",
        "x:",
    ],
)
def test_invalid_names_are_rejected_as_model_param(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_model_name(name)
    assert caught.value.param == "model"
    assert caught.value.status == 400


def test_longest_allowed_name() -> None:
    assert validate_model_name("x" * 256) == "x" * 256


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct:q4_1"),
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "llama-3.2-1b-instruct:q4_k_m"),
        ("model-IQ4_XS.gguf", "model:iq4_xs"),
        ("model.Q8_0.gguf", "model:q8_0"),
        ("model-F16.gguf", "model:f16"),
        ("model.BF16.gguf", "model:bf16"),
        ("model-f32.gguf", "model:f32"),
        ("gemma-3-4b-it-UD-Q4_K_XL.gguf", "gemma-3-4b-it:ud-q4_k_xl"),
        ("Qwen2.5-7B-Instruct-Q4_K_M-00001-of-00002.gguf", "qwen2.5-7b-instruct:q4_k_m"),
        ("nomic-embed-text-v1.5.gguf", "nomic-embed-text-v1.5:latest"),
        ("phi-2.gguf", "phi-2:latest"),
        ("Q4_0.gguf", "q4_0:latest"),
    ],
)
def test_display_name_for_file(file_name: str, expected: str) -> None:
    assert display_name_for_file(Path("/models") / file_name) == expected


def test_display_names_are_valid_model_names() -> None:
    name = display_name_for_file(Path("SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    ("file_name", "loadable"),
    [
        ("model.Q4_0.gguf", True),
        ("model-00001-of-00003.gguf", True),
        ("model-00002-of-00003.gguf", False),
        ("mmproj-model-f16.gguf", False),
        ("Model-MMPROJ.gguf", False),
        ("model.bin", False),
    ],
)
def test_is_weights_file(file_name: str, loadable: bool) -> None:
    assert is_weights_file(Path(file_name)) is loadable


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("x", "x:latest"),
        ("x:latest", "x:latest"),
        ("library/x:7b", "x:7b"),
        ("registry.ollama.ai/library/x:7b", "x:7b"),
        ("registry.ollama.ai/ns/x", "ns/x:latest"),
        ("hf.co/Org/Repo:Q4_K_M", "hf.co/org/repo:q4_k_m"),
        ("X:Latest", "x:latest"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical
