"""What llmhost needs to know about a GGUF file, read from its header (type codes from the ``gguf`` package)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import LlamaFileType

from llmhost.models.gguf_header import GgufHeader, LongArray, read_header

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True, slots=True)
class GgufMeta:
    architecture: str | None
    name: str | None  # general.name
    context_length: int | None  # <arch>.context_length: the context the model was trained for
    embedding_length: int | None
    block_count: int | None
    head_count: int | None
    head_count_kv: int | None
    parameter_count: int | None  # sum of the tensors' element counts
    quantization: str | None  # e.g. "Q4_1"
    chat_template: str | None  # tokenizer.chat_template
    pooling_type: int | None
    file_size: int
    vocab_size: int | None = None
    key_length: int | None = None  # per-head K size when the model says (else embedding/heads)
    value_length: int | None = None

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)


def read_gguf_meta(path: Path) -> GgufMeta:
    """Parse the header of ``path`` (milliseconds: big arrays are skipped, not read). Does disk I/O: call it
    from a thread."""
    file_size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise ValueError(f"not a GGUF file: {path}")
    return _meta_from_header(read_header(path), file_size)


def _meta_from_header(header: GgufHeader, file_size: int) -> GgufMeta:
    fields = header.fields
    arch = _str(fields.get("general.architecture"))
    prefix = f"{arch}." if arch else "\0"  # no architecture: no per-architecture keys match
    params = sum(tensor.n_elements for tensor in header.tensors)
    return GgufMeta(
        architecture=arch,
        name=_str(fields.get("general.name")),
        context_length=_int(fields.get(prefix + "context_length")),
        embedding_length=_int(fields.get(prefix + "embedding_length")),
        block_count=_int(fields.get(prefix + "block_count")),
        head_count=_int(fields.get(prefix + "attention.head_count")),
        head_count_kv=_int(fields.get(prefix + "attention.head_count_kv")),
        parameter_count=params or None,
        quantization=_quantization(header),
        chat_template=_str(fields.get("tokenizer.chat_template")),
        pooling_type=_int(fields.get(prefix + "pooling_type")),
        file_size=file_size,
        vocab_size=_int(fields.get(prefix + "vocab_size")) or _length(fields.get("tokenizer.ggml.tokens")),
        key_length=_int(fields.get(prefix + "attention.key_length")),
        value_length=_int(fields.get(prefix + "attention.value_length")),
    )


def _length(value: Any) -> int | None:
    if isinstance(value, LongArray):
        return value.length
    return len(value) if isinstance(value, list) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    """A scalar, or the largest entry of a per-layer array (some architectures have per-layer heads)."""
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        return int(max(numbers)) if numbers else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _quantization(header: GgufHeader) -> str | None:
    file_type = _int(header.fields.get("general.file_type"))
    if file_type is not None:
        try:
            kind = LlamaFileType(file_type)
        except ValueError:
            kind = None
        if kind is not None and kind is not LlamaFileType.GUESSED:
            return kind.name.removeprefix("MOSTLY_").removeprefix("ALL_")
    weights: Counter[str] = Counter()
    for tensor in header.tensors:
        weights[tensor.type_name] += tensor.n_elements
    return weights.most_common(1)[0][0] if weights else None
