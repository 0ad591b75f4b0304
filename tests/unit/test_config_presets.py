"""Named configuration presets: what a preset may hold, how applying one rewrites a document, and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmhost.config_presets import PRESET_SECTIONS, Preset, PresetNotFound, PresetStore, sections_of, with_preset
from llmhost.live_config import redact, unredact
from llmhost.types import InvalidRequest

DOCUMENT = """\
port: 11436
auth:
  keys: [{name: admin, key_sha256: "sha256:%s", admin: true}]
models:
  m: {ctx: 2048, tensor_split: [0.5, 0.5]}
scheduler: {max_loaded: 2}
""" % ("0" * 64)


def test_a_preset_keeps_the_live_sections_and_never_the_keys() -> None:
    assert "auth" not in PRESET_SECTIONS
    expected = {"models": {"m": {"ctx": 2048, "tensor_split": [0.5, 0.5]}}, "scheduler": {"max_loaded": 2}}
    assert sections_of(DOCUMENT) == expected


def test_applying_replaces_the_sections_it_holds_and_keeps_the_rest() -> None:
    preset = Preset("p", 0.0, "me", {"models": {"m": {"ctx": 512}}})
    applied = yaml.safe_load(with_preset(DOCUMENT, preset))
    assert applied["models"] == {"m": {"ctx": 512}}  # replaced, not merged: the split goes too
    assert applied["scheduler"] == {"max_loaded": 2} and applied["port"] == 11436 and applied["auth"]["keys"]


def test_the_store_saves_lists_and_deletes(tmp_path: Path) -> None:
    store = PresetStore(tmp_path / "presets.json")
    store.save("b-two", {"scheduler": {"max_loaded": 1}}, "admin")
    store.save("a-one", sections_of(DOCUMENT), "admin")
    assert [p.name for p in PresetStore(tmp_path / "presets.json").list()] == ["a-one", "b-two"]  # read back from disk
    assert store.get("b-two").who == "admin"
    store.delete("b-two")
    with pytest.raises(PresetNotFound):
        store.get("b-two")
    with pytest.raises(PresetNotFound):
        store.delete("b-two")


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_names_that_could_escape_or_confuse_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidRequest):
        PresetStore(tmp_path / "p.json").save(name, {"models": {}}, "me")


@pytest.mark.parametrize("sections", [{}, {"auth": {}}, {"port": 1}, {"models": {}, "engine": {}}, []])
def test_sections_outside_the_live_ones_are_refused(tmp_path: Path, sections: object) -> None:
    with pytest.raises(InvalidRequest):
        PresetStore(tmp_path / "p.json").save("ok", sections, "me")  # type: ignore[arg-type]


def test_hidden_provider_keys_survive_a_round_trip_and_an_edited_key_wins() -> None:
    current = "providers:\n- name: a\n  api_key: sk-1\n- name: b\n  api_key: sk-2\n"
    shown = redact(current)
    assert "sk-" not in shown
    assert unredact(shown, current) == current
    edited = shown.replace("<hidden>\n- name: b", "sk-new\n- name: b")
    assert unredact(edited, current) == current.replace("sk-1", "sk-new")
