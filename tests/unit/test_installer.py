"""The installer on real files, real pip and real tarballs; no cmake build runs here."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest
from rich.console import Console

from llmhost import installer
from llmhost.config import DEFAULT_MODEL_FILE, Settings
from llmhost.installer import InstallError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("LLMHOST_") or key == "CMAKE_ARGS":
            monkeypatch.delenv(key)
    monkeypatch.setenv("LLMHOST_CONFIG", str(tmp_path / "absent-config.yaml"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def make_script(path: Path, body: str = "echo 'version: 1 (test)'") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, record=True)


# --- resolve_engine ---------------------------------------------------------------------------------------


def test_configured_engine_wins(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = make_script(tmp_path / "custom" / "llama-server")
    make_script(installer.build_plan(settings).binary)
    make_script(tmp_path / "bin" / "llama-server")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    settings.engine.llama_server = configured
    assert installer.resolve_engine(settings) == configured


def test_configured_engine_missing_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    settings.engine.llama_server = tmp_path / "nowhere" / "llama-server"
    with pytest.raises(InstallError, match=r"engine.llama_server: .*nowhere/llama-server does not exist"):
        installer.resolve_engine(settings)


def test_configured_engine_not_executable(settings: Settings, tmp_path: Path) -> None:
    plain = tmp_path / "llama-server"
    plain.write_text("not a program")
    settings.engine.llama_server = plain
    with pytest.raises(InstallError, match="is not an executable file"):
        installer.resolve_engine(settings)


def test_installed_engine_before_path(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_script(tmp_path / "bin" / "llama-server")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    built = make_script(installer.build_plan(settings).binary)
    assert installer.installed_engine(settings) == built
    assert installer.resolve_engine(settings) == built


def test_path_engine_then_none(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert installer.installed_engine(settings) is None
    assert installer.resolve_engine(settings) is None
    on_path = make_script(tmp_path / "bin" / "llama-server")
    assert installer.resolve_engine(settings) == on_path


def test_installed_engine_follows_cmake_args(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    make_script(installer.build_plan(settings).binary)
    assert installer.installed_engine(settings) is not None
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on")
    assert installer.installed_engine(settings) is None


# --- build naming and configuration -----------------------------------------------------------------------


def test_cpu_plan_reuses_the_plain_build_dir(settings: Settings) -> None:
    plan = installer.build_plan(settings, env={})
    source = settings.cache_dir / "build" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp"
    assert plan.source_dir == source
    assert plan.build_dir == source / "build"
    assert plan.install_dir == settings.data_dir / "engine" / "llama.cpp-0.3.36-cpu"
    assert plan.binary == plan.install_dir / "llama-server"
    assert plan.backend == "cpu"
    assert plan.cmake_flags == list(installer.BASE_CMAKE_FLAGS)


def test_cmake_args_get_their_own_dirs(settings: Settings) -> None:
    cpu = installer.build_plan(settings, env={"CMAKE_ARGS": "  "})
    cuda = installer.build_plan(settings, env={"CMAKE_ARGS": "-DGGML_CUDA=on"})
    cuda_spaced = installer.build_plan(settings, env={"CMAKE_ARGS": "  -DGGML_CUDA=on "})
    cuda_arch = installer.build_plan(settings, env={"CMAKE_ARGS": "-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=86"})
    digest = installer.args_hash(["-DGGML_CUDA=on"])
    assert digest is not None and len(digest) == 8
    assert cpu.build_dir.name == "build"
    assert cuda.build_dir == cpu.source_dir / f"build-{digest}"
    assert cuda.install_dir.name == f"llama.cpp-0.3.36-cuda-{digest}"
    assert cuda.cmake_flags[-1] == "-DGGML_CUDA=on"
    assert cuda_spaced == cuda
    assert cuda_arch.backend == "cuda"
    assert len({cpu.build_dir, cuda.build_dir, cuda_arch.build_dir}) == 3
    assert len({cpu.install_dir, cuda.install_dir, cuda_arch.install_dir}) == 3


def test_backend_names() -> None:
    assert installer.backend_name([]) == "cpu"
    assert installer.backend_name(["-DGGML_CUDA=OFF"]) == "cpu"
    assert installer.backend_name(["-D", "GGML_VULKAN=1"]) == "vulkan"
    assert installer.backend_name(["-DGGML_HIP:BOOL=ON"]) == "rocm"


def test_is_configured_reads_the_cmake_cache(settings: Settings) -> None:
    plan = installer.build_plan(settings, env={})
    assert not installer.is_configured(plan)
    plan.build_dir.mkdir(parents=True)
    (plan.build_dir / "Makefile").write_text("")
    defines = installer.parse_defines(plan.cmake_flags)
    cache = [f"{key}:BOOL={value.replace('ON', 'on')}" for key, value in defines.items()]
    (plan.build_dir / "CMakeCache.txt").write_text("# comment\n" + "\n".join(cache) + "\n")
    assert installer.is_configured(plan)
    (plan.build_dir / "CMakeCache.txt").write_text(
        "\n".join(cache).replace("LLAMA_CURL:BOOL=OFF", "LLAMA_CURL:BOOL=ON")
    )
    assert not installer.is_configured(plan)


def test_extract_vendor_takes_only_llama_cpp(settings: Settings, tmp_path: Path) -> None:
    sdist = tmp_path / "llama_cpp_python-0.3.36.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name in ("vendor/llama.cpp/CMakeLists.txt", "vendor/llama.cpp/src/llama.cpp", "setup.py"):
            data = f"// {name}\n".encode()
            member = tarfile.TarInfo(f"llama_cpp_python-0.3.36/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    plan = installer.build_plan(settings, env={})
    installer.extract_vendor(sdist, plan.source_dir, quiet())
    assert (plan.source_dir / "CMakeLists.txt").read_text() == "// vendor/llama.cpp/CMakeLists.txt\n"
    assert (plan.source_dir / "src" / "llama.cpp").is_file()
    root = plan.source_dir.parents[1]
    assert not (root / "setup.py").exists()
    assert sorted(p.name for p in root.parent.iterdir()) == [root.name]


def test_missing_build_tools_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(InstallError, match=r"cmake.* not found.*apt-get install cmake build-essential"):
        installer.check_build_tools()


def test_ensure_engine_returns_an_installed_engine_at_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = make_script(installer.build_plan(settings).binary)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no cmake: nothing may be built
    assert installer.ensure_engine(settings, quiet()) == built


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_failed_build_reports_the_last_lines(settings: Settings) -> None:
    plan = installer.build_plan(settings, env={})
    plan.build_dir.mkdir(parents=True)  # not configured: cmake --build fails at once
    with pytest.raises(InstallError, match=r"(?s)the llama-server build failed \(exit \d+\).*last lines:"):
        installer.build(plan, quiet())


# --- default model ----------------------------------------------------------------------------------------


def test_default_model_is_fetched_once(settings: Settings) -> None:
    path = installer.ensure_default_model(settings, quiet())
    assert path == settings.models_dir / DEFAULT_MODEL_FILE == installer.default_model_path(settings)
    assert path.stat().st_size == 98_362_432
    with open(path, "rb") as handle:
        assert handle.read(4) == b"GGUF"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    before = path.stat().st_mtime_ns
    assert installer.ensure_default_model(settings, quiet()) == path
    assert path.stat().st_mtime_ns == before


def test_run_setup_with_a_configured_engine(settings: Settings, tmp_path: Path) -> None:
    settings.engine.llama_server = make_script(tmp_path / "custom" / "llama-server")
    console = quiet()
    installer.run_setup(settings, console)
    text = console.export_text()
    assert "version: 1 (test)" in text
    assert str(tmp_path / "absent-config.yaml") in text and "not created" in text
    assert DEFAULT_MODEL_FILE in text
    assert not installer.build_plan(settings).install_dir.exists()
