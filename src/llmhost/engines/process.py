"""A supervised child process with an explicit state machine.

    stopped -> starting -> ready -> stopping -> stopped
                  |          |
                  +--------> failed  (exit while starting or serving; restart goes back to starting)

The child runs in its own process group (so a stop takes its helpers along), receives SIGKILL
when the thread that spawned it dies (PR_SET_PDEATHSIG; spawn from the event-loop thread), and
is recorded in a pid file so that a crash of the service leaves nothing behind at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

import psutil
import structlog

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1


class State(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    FAILED = "failed"


ALLOWED: dict[State, set[State]] = {
    State.STOPPED: {State.STARTING},
    State.STARTING: {State.READY, State.FAILED, State.STOPPING},
    State.READY: {State.STOPPING, State.FAILED},
    State.STOPPING: {State.STOPPED},
    State.FAILED: {State.STARTING, State.STOPPING, State.STOPPED},
}


class TransitionError(RuntimeError):
    pass


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ChildProcess:
    """Owns one OS process: spawn, stderr capture, graceful stop, and its state."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        pid_dir: Path,
        log_lines: int = 500,
        on_line: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.name = name
        self.pid_dir = pid_dir
        self.env = env
        self.lines: deque[str] = deque(maxlen=log_lines)
        self.on_line = on_line
        self.state = State.STOPPED
        self.state_since = time.time()
        self.reason: str | None = None
        self.returncode: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.exited = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def transition(self, new: State, reason: str | None = None) -> None:
        if new not in ALLOWED[self.state]:
            raise TransitionError(f"{self.name}: {self.state} -> {new} is not allowed")
        log.debug("engine state", engine=self.name, old=str(self.state), new=str(new), reason=reason)
        self.state = new
        self.state_since = time.time()
        if reason is not None or new in (State.STARTING, State.READY):
            self.reason = reason

    async def spawn(self) -> None:
        self.transition(State.STARTING)
        self.exited.clear()
        self.returncode = None
        self.lines.clear()
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_set_pdeathsig,
            env=self.env,
        )
        self._reader = asyncio.create_task(self._read_stderr(self._proc), name=f"stderr-{self.name}")
        self._write_pid_file()

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        try:
            while raw := await proc.stderr.readline():
                line = raw.decode("utf-8", "replace").rstrip()
                self.lines.append(line)
                if self.on_line is not None:
                    self.on_line(line)
        finally:
            self.returncode = await proc.wait()
            self._remove_pid_file()
            self.exited.set()

    def describe_exit(self) -> str:
        code = self.returncode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def defunct(self) -> bool:
        """Dead but not yet reaped (or gone): true before ``exited`` is set when the watcher lags behind."""
        return self.pid is not None and not self.exited.is_set() and _defunct(self.pid)

    def tail(self, n: int = 12) -> list[str]:
        return list(self.lines)[-n:]

    async def terminate(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds; always ends STOPPED."""
        if self.state != State.STOPPING:
            self.transition(State.STOPPING)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.exited.wait(), grace)
            except TimeoutError:
                log.warning("engine ignored SIGTERM, killing", engine=self.name, pid=proc.pid)
                _signal_group(proc.pid, signal.SIGKILL)
                await self.exited.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        self.transition(State.STOPPED)

    def kill_now(self) -> None:
        """Synchronous last resort at interpreter exit."""
        if self._proc is not None and self._proc.returncode is None:
            _signal_group(self._proc.pid, signal.SIGKILL)

    # pid files ---------------------------------------------------------------------------

    def _pid_file(self) -> Path:
        return self.pid_dir / f"engine-{self.pid}.json"

    def _write_pid_file(self) -> None:
        assert self._proc is not None
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        try:
            created = psutil.Process(self._proc.pid).create_time()
        except psutil.NoSuchProcess:
            return  # it exited already (e.g. rejected its arguments): nothing can be orphaned
        record = {"pid": self._proc.pid, "name": self.name, "argv": self.argv, "create_time": created}
        record |= {"owner": os.getpid(), "owner_create_time": psutil.Process().create_time()}
        self._pid_file().write_text(json.dumps(record))

    def _remove_pid_file(self) -> None:
        if self._proc is not None:
            self._pid_file().unlink(missing_ok=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _defunct(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def reap_orphans(pid_dir: Path) -> list[int]:
    """Kill engines left by a crashed earlier run; only processes whose pid, start time and argv match."""
    killed: list[int] = []
    if not pid_dir.is_dir():
        return killed
    for path in pid_dir.glob("engine-*.json"):
        try:
            record = json.loads(path.read_text())
            if _owner_alive(record):
                continue  # another llmhost on the same data dir still runs it
            proc = psutil.Process(int(record["pid"]))
            same = abs(proc.create_time() - float(record["create_time"])) < 1.0
            if same and proc.cmdline()[:1] == record["argv"][:1]:
                _signal_group(proc.pid, signal.SIGKILL)
                killed.append(proc.pid)
        except (psutil.Error, ValueError, KeyError, TypeError, OSError):
            pass
        path.unlink(missing_ok=True)
    if killed:
        log.warning("killed orphaned engines from an earlier run", pids=killed)
    return killed


def _owner_alive(record: dict[str, object]) -> bool:
    """The llmhost that started the engine is still running (the same pid with the same start time)."""
    try:
        owner = psutil.Process(int(record["owner"]))  # type: ignore[call-overload]
        return owner.pid != os.getpid() and abs(owner.create_time() - float(record["owner_create_time"])) < 1.0  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, psutil.Error):
        return False
