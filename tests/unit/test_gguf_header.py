"""The header-only GGUF reader agrees with the gguf package's full reader, and refuses truncated files."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFReader, GGUFValueType
from test_gguf_meta import real_model_path

from llmhost.models.gguf_header import LongArray, read_header


@pytest.fixture(scope="module")
def both() -> tuple[object, GGUFReader]:
    path = real_model_path()
    return read_header(path), GGUFReader(path)


def test_scalar_fields_match_the_reference_reader(both: tuple) -> None:  # type: ignore[type-arg]
    header, reader = both
    reference = {key: field for key, field in reader.fields.items() if not key.startswith("GGUF.")}
    assert set(header.fields) == set(reference)
    for key, field in reference.items():
        ours = header.fields[key]
        if field.types[0] == GGUFValueType.ARRAY:
            assert isinstance(ours, (LongArray, list)), key
            length = ours.length if isinstance(ours, LongArray) else len(ours)
            assert length == len(field.data), key
        elif field.types[0] == GGUFValueType.FLOAT32:
            assert ours == pytest.approx(field.contents()), key
        else:
            assert ours == field.contents(), key


def test_tensor_table_matches_the_reference_reader(both: tuple) -> None:  # type: ignore[type-arg]
    header, reader = both
    assert [t.name for t in header.tensors] == [t.name for t in reader.tensors]
    assert [t.n_elements for t in header.tensors] == [int(t.n_elements) for t in reader.tensors]
    assert [t.type_name for t in header.tensors] == [t.tensor_type.name for t in reader.tensors]


@pytest.mark.parametrize("cut", [5, 24, 100, 4096, 200_000, 1_000_000])
def test_truncated_headers_are_refused(tmp_path: Path, cut: int) -> None:
    truncated = tmp_path / "cut.gguf"
    with real_model_path().open("rb") as handle:
        truncated.write_bytes(handle.read(cut))
    with pytest.raises(ValueError, match="not a GGUF file"):
        read_header(truncated)


def test_empty_and_foreign_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gguf"
    empty.touch()
    foreign = tmp_path / "foreign.gguf"
    foreign.write_bytes(b"PK\x03\x04" + bytes(100))
    for path in (empty, foreign):
        with pytest.raises(ValueError, match="not a GGUF file"):
            read_header(path)
