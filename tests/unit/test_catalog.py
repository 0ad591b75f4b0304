from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import pytest
from gguf import GGUFWriter

from llmhost.config import DEFAULT_MODEL_FILE, ModelProfile, Settings
from llmhost.models.catalog import Catalog, ModelEntry
from llmhost.models.hf_cache import hf_root
from llmhost.models.ollama_store import ollama_root, scan_ollama
from llmhost.types import InvalidRequest, ModelNotFound

TEMPLATE = "{{ .System }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n"
PARAMS = {"stop": ["<|im_end|>"], "temperature": 0.2}
STORE_ENV = ("OLLAMA_MODELS", "HF_HUB_CACHE", "HF_HOME")


def real_model_path() -> Path:
    explicit = os.environ.get("LLMHOST_TEST_MODEL")
    path = Path(explicit) if explicit else Path(platformdirs.user_data_dir("llmhost")) / "models" / DEFAULT_MODEL_FILE
    if not path.is_file():
        pytest.fail(f"the default model is missing at {path}: run `make test` (or set LLMHOST_TEST_MODEL)")
    return path


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LLMHOST_* variable, user config file or store location may leak into these tests."""
    for key in list(os.environ):
        if key.startswith("LLMHOST_") and key != "LLMHOST_TEST_MODEL":
            monkeypatch.delenv(key)
    for key in STORE_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LLMHOST_CONFIG", str(tmp_path / "no-config.yaml"))


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def profile_of(**values: Any) -> ModelProfile:
    return ModelProfile.model_validate(values)


def make_settings(root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "cache_dir": root / "cache",
        "scan_hf_cache": False,
        "scan_ollama": False,
    }
    return Settings(**(values | overrides))


def place(source: Path, target: Path) -> Path:
    """Put ``source`` at ``target`` without copying 100 MB when a hard link will do."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


def write_tiny_gguf(path: Path, context_length: int = 2048) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(path, "llama")
    writer.add_context_length(context_length)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def names(entries: list[ModelEntry]) -> list[str]:
    return [entry.name for entry in entries]


# Directory and config sources ----------------------------------------------------------------


@pytest.fixture
def local_models(tmp_path: Path) -> Path:
    models = tmp_path / "data" / "models"
    write_tiny_gguf(models / "alpha.Q8_0.gguf")
    write_tiny_gguf(models / "sub" / "beta.gguf", context_length=1024)
    write_tiny_gguf(models / "big-00001-of-00002.gguf")
    write_tiny_gguf(models / "big-00002-of-00002.gguf")
    write_tiny_gguf(models / "mmproj-alpha-f16.gguf")
    (models / "junk.gguf").write_bytes(b"definitely not a model")
    (models / "notes.txt").write_text("ignored")
    return models


def test_directory_scan(tmp_path: Path, local_models: Path) -> None:
    catalog = Catalog(make_settings(tmp_path))
    entries = catalog.scan()
    assert names(entries) == ["alpha:q8_0", "beta:latest", "big:latest", "junk:latest"]
    assert catalog.entries() == entries
    beta = catalog.get("beta:latest")
    assert beta.source == "directory"
    assert beta.path == local_models / "sub" / "beta.gguf"
    assert beta.size == beta.path.stat().st_size
    assert beta.modified == beta.path.stat().st_mtime
    assert beta.meta is not None and beta.meta.context_length == 1024
    assert beta.error is None


def test_unreadable_file_is_listed_with_error(tmp_path: Path, local_models: Path) -> None:
    catalog = Catalog(make_settings(tmp_path))
    catalog.scan()
    junk = catalog.get("junk")
    assert junk.meta is None
    assert junk.error is not None and "not a GGUF file" in junk.error


def test_first_directory_wins_and_extra_dirs_are_scanned(tmp_path: Path, local_models: Path) -> None:
    extra = tmp_path / "extra"
    write_tiny_gguf(extra / "alpha.Q8_0.gguf")
    write_tiny_gguf(extra / "gamma-F16.gguf")
    catalog = Catalog(make_settings(tmp_path, model_dirs=[extra]))
    catalog.scan()
    assert catalog.get("alpha:q8_0").path == local_models / "alpha.Q8_0.gguf"
    assert catalog.get("gamma:f16").path == extra / "gamma-F16.gguf"


def test_config_path_beats_directory(tmp_path: Path, local_models: Path) -> None:
    configured = write_tiny_gguf(tmp_path / "elsewhere" / "custom.gguf", context_length=4096)
    profile = profile_of(path=configured, aliases=["a", "first"], ctx=2048)
    catalog = Catalog(make_settings(tmp_path, models={"alpha:q8_0": profile}))
    catalog.scan()
    alpha = catalog.get("alpha:q8_0")
    assert (alpha.source, alpha.path, alpha.aliases) == ("config", configured, ("a", "first"))
    assert alpha.meta is not None and alpha.meta.context_length == 4096
    assert catalog.get("a") is alpha
    assert catalog.profile(alpha) is catalog._settings.models["alpha:q8_0"]


def test_config_relative_path_is_under_models_dir(tmp_path: Path, local_models: Path) -> None:
    catalog = Catalog(make_settings(tmp_path, models={"mine": profile_of(path=Path("sub/beta.gguf"))}))
    catalog.scan()
    assert catalog.get("mine").path == local_models / "sub" / "beta.gguf"


def test_config_path_missing_file_is_listed_with_error(tmp_path: Path) -> None:
    catalog = Catalog(make_settings(tmp_path, models={"ghost": profile_of(path=tmp_path / "ghost.gguf")}))
    catalog.scan()
    ghost = catalog.get("ghost")
    assert ghost.meta is None and ghost.error is not None and ghost.size == 0


def test_pathless_profile_attaches_to_discovered_model(tmp_path: Path, local_models: Path) -> None:
    profile = profile_of(aliases=["b"], ctx=8192, parallel=2)
    catalog = Catalog(make_settings(tmp_path, models={"beta": profile}))
    catalog.scan()
    beta = catalog.get("beta:latest")
    assert beta.aliases == ("beta", "b")
    assert catalog.get("b") is beta
    assert catalog.profile(beta).ctx == 8192
    assert catalog.profile(catalog.get("alpha:q8_0")) == catalog._settings.defaults


def test_profile_found_through_alias_key(tmp_path: Path, local_models: Path) -> None:
    profile = profile_of(aliases=["alpha:q8_0"], ctx=1024)
    catalog = Catalog(make_settings(tmp_path, models={"my-alpha": profile}))
    catalog.scan()
    assert catalog.profile(catalog.get("alpha:q8_0")).ctx == 1024


def test_get_fallbacks(tmp_path: Path, local_models: Path) -> None:
    catalog = Catalog(make_settings(tmp_path))
    catalog.scan()
    beta = catalog.get("beta:latest")
    assert catalog.get("beta") is beta
    assert catalog.get("  beta ") is beta
    assert catalog.get("library/beta:latest") is beta
    assert catalog.get("registry.ollama.ai/library/beta") is beta
    assert catalog.get("BETA:Latest") is beta
    with pytest.raises(ModelNotFound):
        catalog.get("alpha")  # only alpha:q8_0 exists
    with pytest.raises(ModelNotFound) as caught:
        catalog.get("nope:7b")
    assert caught.value.status == 404 and caught.value.model == "nope:7b"


def test_untagged_config_name_matches_latest(tmp_path: Path, local_models: Path) -> None:
    configured = write_tiny_gguf(tmp_path / "elsewhere" / "plain.gguf")
    catalog = Catalog(make_settings(tmp_path, models={"plain": profile_of(path=configured)}))
    catalog.scan()
    assert catalog.get("plain:latest").name == "plain"


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a/../b", "..", "x\x00y", "", "C:\\x", "~/x"])
def test_get_rejects_path_like_names(tmp_path: Path, local_models: Path, name: str) -> None:
    catalog = Catalog(make_settings(tmp_path))
    catalog.scan()
    with pytest.raises(InvalidRequest) as caught:
        catalog.get(name)
    assert caught.value.param == "model"


def test_metadata_cache_survives_rescan_until_file_changes(tmp_path: Path, local_models: Path) -> None:
    catalog = Catalog(make_settings(tmp_path))
    catalog.scan()
    first = catalog.get("beta").meta
    catalog.scan()
    assert catalog.get("beta").meta is first
    path = local_models / "sub" / "beta.gguf"
    write_tiny_gguf(path, context_length=3072)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    catalog.scan()
    changed = catalog.get("beta").meta
    assert changed is not first and changed is not None and changed.context_length == 3072


def test_rescan_drops_deleted_models(tmp_path: Path, local_models: Path) -> None:
    catalog = Catalog(make_settings(tmp_path))
    catalog.scan()
    (local_models / "alpha.Q8_0.gguf").unlink()
    catalog.scan()
    with pytest.raises(ModelNotFound):
        catalog.get("alpha:q8_0")


def test_default_entry_prefers_setting_then_default_file(tmp_path: Path, local_models: Path) -> None:
    write_tiny_gguf(local_models / DEFAULT_MODEL_FILE)
    catalog = Catalog(make_settings(tmp_path))
    catalog.scan()
    default = catalog.default_entry()
    assert default is not None and default.name == "smollm2-135m-instruct:q4_1"
    chosen = Catalog(make_settings(tmp_path, default_model="beta"))
    chosen.scan()
    assert chosen.default_entry() == chosen.get("beta:latest")
    unknown = Catalog(make_settings(tmp_path, default_model="missing:7b"))
    unknown.scan()
    assert unknown.default_entry() == unknown.get("smollm2-135m-instruct:q4_1")


def test_default_entry_falls_back_to_first_usable(tmp_path: Path, local_models: Path) -> None:
    catalog = Catalog(make_settings(tmp_path))
    catalog.scan()
    assert catalog.default_entry() == catalog.get("alpha:q8_0")


def test_empty_catalog(tmp_path: Path) -> None:
    catalog = Catalog(make_settings(tmp_path))
    assert catalog.entries() == []
    assert catalog.scan() == []
    assert catalog.default_entry() is None
    with pytest.raises(ModelNotFound):
        catalog.get("anything")


# Ollama store ----------------------------------------------------------------------------------


def write_blob(blobs: Path, data: bytes, separator: str = "-") -> dict[str, Any]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / f"sha256{separator}{hexdigest}").write_bytes(data)
    return {"digest": f"sha256:{hexdigest}", "size": len(data)}


def write_manifest(root: Path, relative: str, config: dict[str, Any], layers: list[dict[str, Any]]) -> None:
    path = root / "manifests" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
        "layers": layers,
    }
    path.write_text(json.dumps(manifest))


def layer(media: str, blob: dict[str, Any]) -> dict[str, Any]:
    return {"mediaType": f"application/vnd.ollama.image.{media}", **blob}


@pytest.fixture(scope="module")
def ollama_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ollama") / "models"
    blobs = root / "blobs"
    blobs.mkdir(parents=True)
    real = real_model_path()
    real_hex = sha256_of(real)
    place(real, blobs / f"sha256-{real_hex}")
    model = {"digest": f"sha256:{real_hex}", "size": real.stat().st_size}
    config = write_blob(blobs, json.dumps({"model_format": "gguf", "model_family": "llama"}).encode())
    template = write_blob(blobs, TEMPLATE.encode())
    params = write_blob(blobs, json.dumps(PARAMS).encode())
    system = write_blob(blobs, b"You are terse.")
    license_ = write_blob(blobs, b"Apache-2.0")
    tiny_path = write_tiny_gguf(root.parent / "tiny.gguf")
    tiny = write_blob(blobs, tiny_path.read_bytes(), separator=":")  # an old-style blob name

    full = [layer("model", model), layer("template", template), layer("params", params)]
    full += [layer("system", system), layer("license", license_)]
    write_manifest(root, "registry.ollama.ai/library/smollm2/135m", config, full)
    write_manifest(root, "registry.ollama.ai/library/smollm2/latest", config, [layer("model", model)])
    write_manifest(root, "registry.ollama.ai/someone/tiny/q4", config, [layer("model", tiny)])
    write_manifest(root, "hf.co/org/repo/Q4_1", config, [layer("model", model), layer("prompt", template)])

    traversal = {"digest": "sha256:../../etc/passwd", "size": 1}
    missing = {"digest": "sha256:" + "0" * 64, "size": 1}
    write_manifest(root, "registry.ollama.ai/library/evil/latest", config, [layer("model", traversal)])
    write_manifest(
        root,
        "registry.ollama.ai/library/evil/template",
        config,
        [layer("model", model), layer("template", traversal)],
    )
    write_manifest(root, "registry.ollama.ai/library/absent/latest", config, [layer("model", missing)])
    write_manifest(root, "registry.ollama.ai/library/nomodel/latest", config, [layer("template", template)])
    write_manifest(root, "registry.ollama.ai/library/toodeep/x/latest", config, [layer("model", model)])
    (root / "manifests" / "registry.ollama.ai" / "library" / "garbage").mkdir()
    (root / "manifests" / "registry.ollama.ai" / "library" / "garbage" / "latest").write_text("{not json")
    return root


@pytest.fixture(scope="module")
def ollama_catalog(ollama_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """Scanned once for the module: the store's 100 MB GGUF takes a second or two to parse."""
    empty = tmp_path_factory.mktemp("empty")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(monkeypatch, empty)
        catalog = Catalog(make_settings(empty, scan_ollama=True, ollama_models=ollama_store))
        catalog.scan()
        yield catalog


def test_ollama_names(ollama_catalog: Catalog) -> None:
    assert names(ollama_catalog.entries()) == [
        "hf.co/org/repo:Q4_1",
        "smollm2:135m",
        "smollm2:latest",
        "someone/tiny:q4",
    ]
    assert {entry.source for entry in ollama_catalog.entries()} == {"ollama"}


def test_ollama_layers_and_size(ollama_catalog: Catalog, ollama_store: Path) -> None:
    entry = ollama_catalog.get("smollm2:135m")
    manifest = json.loads((ollama_store / "manifests/registry.ollama.ai/library/smollm2/135m").read_text())
    assert entry.size == sum(item["size"] for item in manifest["layers"]) + manifest["config"]["size"]
    assert entry.size > real_model_path().stat().st_size
    assert entry.template == TEMPLATE
    assert entry.params == PARAMS
    assert entry.system == "You are terse."
    assert entry.license == "Apache-2.0"
    assert entry.path.parent == ollama_store / "blobs"
    assert entry.meta is not None and entry.meta.architecture == "llama" and entry.meta.context_length == 8192


def test_ollama_old_prompt_layer_and_colon_blob(ollama_catalog: Catalog) -> None:
    assert ollama_catalog.get("hf.co/org/repo:Q4_1").template == TEMPLATE
    tiny = ollama_catalog.get("someone/tiny:q4")
    assert tiny.path.name.startswith("sha256:")
    assert tiny.meta is not None and tiny.meta.context_length == 2048
    assert tiny.template is None and tiny.params is None


def test_ollama_lookup_forms(ollama_catalog: Catalog) -> None:
    latest = ollama_catalog.get("smollm2:latest")
    assert ollama_catalog.get("smollm2") is latest
    assert ollama_catalog.get("library/smollm2") is latest
    assert ollama_catalog.get("registry.ollama.ai/library/smollm2:135m").name == "smollm2:135m"
    assert ollama_catalog.get("registry.ollama.ai/someone/tiny:q4").name == "someone/tiny:q4"


def test_ollama_unsafe_and_broken_manifests_are_skipped(ollama_catalog: Catalog) -> None:
    for name in ("evil", "evil:template", "absent", "nomodel", "garbage", "toodeep/x"):
        with pytest.raises(ModelNotFound):
            ollama_catalog.get(name)


def test_ollama_root_from_env(ollama_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama_store))
    assert ollama_root(None) == ollama_store
    assert "someone/tiny:q4" in [model.name for model in scan_ollama(ollama_root(None))]
    monkeypatch.delenv("OLLAMA_MODELS")
    assert ollama_root(None) == Path.home() / ".ollama" / "models"
    assert ollama_root(tmp_path) == tmp_path


def test_directory_beats_ollama(ollama_store: Path, tmp_path: Path) -> None:
    write_tiny_gguf(tmp_path / "data" / "models" / "smollm2.gguf", context_length=777)
    catalog = Catalog(make_settings(tmp_path, scan_ollama=True, ollama_models=ollama_store))
    catalog.scan()
    assert catalog.get("smollm2:latest").source == "directory"
    assert catalog.get("smollm2:135m").source == "ollama"


# Hugging Face cache ----------------------------------------------------------------------------


@pytest.fixture
def hf_hub(tmp_path: Path) -> Path:
    hub = tmp_path / "hub"
    repo = hub / "models--org--repo"
    real = real_model_path()
    real_hex = sha256_of(real)
    place(real, repo / "blobs" / real_hex)
    tiny = write_tiny_gguf(repo / "blobs" / "tinyblob")
    old = repo / "snapshots" / "0000old"
    new = repo / "snapshots" / "1111new"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    (old / "SmolLM2-135M-Instruct.Q4_1.gguf").symlink_to(tiny)
    (old / "only-old.F16.gguf").symlink_to(tiny)
    (new / "SmolLM2-135M-Instruct.Q4_1.gguf").symlink_to(Path("../../blobs") / real_hex)
    (new / "mmproj-f16.gguf").symlink_to(tiny)
    (new / "outside.Q8_0.gguf").symlink_to(real)  # resolves outside the repo folder
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))

    twins = hub / "models--org2--twins" / "snapshots" / "abc"
    write_tiny_gguf(twins / "a" / "Model-A.Q4_0.gguf")
    write_tiny_gguf(twins / "b" / "Model-B.Q4_0.gguf")
    write_tiny_gguf(twins / "plain.gguf")
    return hub


def test_hf_cache_names_and_newest_snapshot(hf_hub: Path, tmp_path: Path) -> None:
    catalog = Catalog(make_settings(tmp_path, scan_hf_cache=True, hf_cache=hf_hub))
    catalog.scan()
    assert names(catalog.entries()) == [
        "hf.co/org/repo:f16",
        "hf.co/org/repo:q4_1",
        "hf.co/org2/twins:model-a.q4_0",
        "hf.co/org2/twins:model-b.q4_0",
        "hf.co/org2/twins:plain",
    ]
    smol = catalog.get("hf.co/org/repo:Q4_1")
    assert smol.source == "huggingface"
    assert smol.path == hf_hub / "models--org--repo" / "snapshots" / "1111new" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smol.size == real_model_path().stat().st_size
    assert smol.meta is not None and smol.meta.quantization == "Q4_1" and smol.meta.has_chat_template


def test_hf_root_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert hf_root(None) == Path.home() / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hf_root(None) == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hf_root(None) == tmp_path / "cache"
    assert hf_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_stores_are_not_scanned_when_disabled(hf_hub: Path, ollama_store: Path, tmp_path: Path) -> None:
    catalog = Catalog(make_settings(tmp_path, hf_cache=hf_hub, ollama_models=ollama_store))
    assert catalog.scan() == []
