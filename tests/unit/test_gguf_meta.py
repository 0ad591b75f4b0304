from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import platformdirs
import pytest
from gguf import GGUFWriter, LlamaFileType, PoolingType

from llmhost.config import DEFAULT_MODEL_FILE
from llmhost.models.gguf_meta import GgufMeta, read_gguf_meta


def real_model_path() -> Path:
    explicit = os.environ.get("LLMHOST_TEST_MODEL")
    path = Path(explicit) if explicit else Path(platformdirs.user_data_dir("llmhost")) / "models" / DEFAULT_MODEL_FILE
    if not path.is_file():
        pytest.fail(f"the default model is missing at {path}: run `make test` (or set LLMHOST_TEST_MODEL)")
    return path


@pytest.fixture(scope="module")
def real_meta() -> GgufMeta:
    return read_gguf_meta(real_model_path())


def test_real_model_architecture_and_shape(real_meta: GgufMeta) -> None:
    assert real_meta.architecture == "llama"
    assert real_meta.context_length == 8192
    assert real_meta.embedding_length == 576
    assert real_meta.block_count == 30
    assert real_meta.head_count == 9
    assert real_meta.head_count_kv == 3
    assert real_meta.pooling_type is None
    assert real_meta.name and "smollm2" in real_meta.name.lower()


def test_real_model_parameters_and_quantization(real_meta: GgufMeta) -> None:
    assert real_meta.parameter_count is not None
    assert 130_000_000 <= real_meta.parameter_count <= 140_000_000
    assert real_meta.quantization == "Q4_1"
    assert real_meta.file_size == real_model_path().stat().st_size


def test_real_model_chat_template(real_meta: GgufMeta) -> None:
    assert real_meta.has_chat_template
    assert real_meta.chat_template is not None
    assert "<|im_start|>" in real_meta.chat_template


def test_junk_file_is_not_gguf(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"this is not a model\n" * 10)
    with pytest.raises(ValueError, match="not a GGUF file"):
        read_gguf_meta(junk)


def test_empty_file_is_not_gguf(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gguf"
    empty.touch()
    with pytest.raises(ValueError, match="not a GGUF file"):
        read_gguf_meta(empty)


def test_truncated_gguf_is_not_gguf(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with real_model_path().open("rb") as handle:
        truncated.write_bytes(handle.read(4096))
    with pytest.raises(ValueError, match="not a GGUF file"):
        read_gguf_meta(truncated)


def test_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_gguf_meta(tmp_path / "absent.gguf")


def write_tiny_gguf(path: Path, file_type: LlamaFileType | None = None) -> None:
    writer = GGUFWriter(path, "bert")
    writer.add_context_length(512)
    writer.add_head_count([4, 12, 8])  # per-layer head counts
    writer.add_pooling_type(PoolingType.MEAN)
    if file_type is not None:
        writer.add_file_type(file_type)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float16))
    writer.add_tensor("output_norm.weight", np.zeros(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_synthetic_gguf_without_file_type(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path)
    meta = read_gguf_meta(path)
    assert meta.architecture == "bert"
    assert meta.context_length == 512
    assert meta.head_count == 12
    assert meta.pooling_type == 1
    assert meta.parameter_count == 16 * 8 + 8
    assert meta.quantization == "F16"  # the type holding most of the elements
    assert meta.chat_template is None
    assert not meta.has_chat_template


@pytest.mark.parametrize(
    ("file_type", "expected"),
    [(LlamaFileType.MOSTLY_Q4_K_M, "Q4_K_M"), (LlamaFileType.ALL_F32, "F32"), (LlamaFileType.GUESSED, "F16")],
)
def test_quantization_from_file_type(tmp_path: Path, file_type: LlamaFileType, expected: str) -> None:
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path, file_type)
    assert read_gguf_meta(path).quantization == expected
