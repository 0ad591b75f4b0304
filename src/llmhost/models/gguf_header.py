"""A header-only GGUF reader: key/value metadata and tensor infos, without materialising big arrays.

``gguf.GGUFReader`` builds numpy views of every array (a 49k-token vocabulary takes ~1.7 s); a catalog
only needs scalars, array lengths and the tensor table, which this reads straight from a memory map.
The value and tensor type codes come from the ``gguf`` package.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGMLQuantizationType, GGUFValueType

SCALARS: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
SMALL_ARRAY = 4096  # numeric arrays up to this length are read (per-layer head counts); longer ones counted only


@dataclass(frozen=True, slots=True)
class LongArray:
    """An array that was skipped: only its length and element type are known."""

    length: int
    element: GGUFValueType


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    n_elements: int
    type_name: str


@dataclass(frozen=True, slots=True)
class GgufHeader:
    fields: dict[str, Any]
    tensors: list[TensorInfo]


class _Cursor:
    def __init__(self, buffer: mmap.mmap) -> None:
        self.buffer = buffer
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.buffer, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.unpack("<Q")
        raw = self.buffer[self.pos : self.pos + length]
        if len(raw) != length:
            raise ValueError("truncated string")
        self.pos += length
        return raw.decode("utf-8", "replace")

    def skip_strings(self, count: int) -> None:
        for _ in range(count):
            self.pos += 8 + struct.unpack_from("<Q", self.buffer, self.pos)[0]
        if self.pos > len(self.buffer):
            raise ValueError("truncated string array")

    def value(self, kind: GGUFValueType) -> Any:
        if kind == GGUFValueType.STRING:
            return self.string()
        if kind == GGUFValueType.ARRAY:
            return self.array()
        return self.unpack(SCALARS[kind])

    def array(self) -> Any:
        element = GGUFValueType(self.unpack("<I"))
        length = self.unpack("<Q")
        if element == GGUFValueType.STRING:
            self.skip_strings(length)
            return LongArray(length, element)
        if element == GGUFValueType.ARRAY:
            return [self.array() for _ in range(length)]
        size = struct.calcsize(SCALARS[element])
        if length > SMALL_ARRAY:
            self.pos += size * length
            if self.pos > len(self.buffer):
                raise ValueError("truncated array")
            return LongArray(length, element)
        values = list(struct.unpack_from(f"<{length}{SCALARS[element][1]}", self.buffer, self.pos))
        self.pos += size * length
        return values


def read_header(path: Path) -> GgufHeader:
    """Parse metadata and tensor infos; ValueError on anything that is not a little-endian GGUF v2/v3."""
    with path.open("rb") as handle:
        try:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return _parse(_Cursor(buffer))
        except (struct.error, ValueError, KeyError, IndexError, OverflowError) as exc:
            raise ValueError(f"not a GGUF file: {path}: {exc}") from exc


def _parse(cursor: _Cursor) -> GgufHeader:
    if cursor.buffer[:4] != b"GGUF":
        raise ValueError("bad magic")
    cursor.pos = 4
    version = cursor.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported")
    n_tensors, n_fields = cursor.unpack("<Q"), cursor.unpack("<Q")
    fields: dict[str, Any] = {}
    for _ in range(n_fields):
        key = cursor.string()
        fields[key] = cursor.value(GGUFValueType(cursor.unpack("<I")))
    tensors = [_tensor(cursor) for _ in range(n_tensors)]
    if cursor.pos > len(cursor.buffer):
        raise ValueError("truncated header")
    return GgufHeader(fields, tensors)


def _tensor(cursor: _Cursor) -> TensorInfo:
    name = cursor.string()
    dims = [cursor.unpack("<Q") for _ in range(cursor.unpack("<I"))]
    kind = cursor.unpack("<I")
    cursor.pos += 8  # data offset
    count = 1
    for dim in dims:
        count *= dim
    try:
        type_name = GGMLQuantizationType(kind).name
    except ValueError:
        type_name = f"type{kind}"
    return TensorInfo(name, count, type_name)
