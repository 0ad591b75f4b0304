"""Running under systemd: the sd_notify protocol (READY, STATUS, WATCHDOG, STOPPING) in a few lines, and the
unit file ``llmhost service install`` writes.

sd_notify is one datagram per message to the AF_UNIX socket named by ``NOTIFY_SOCKET`` (a leading ``@`` means
the abstract namespace). Without that variable every call is a no-op, so the same code runs anywhere.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

STATUS_EVERY = 10.0


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self.address = "\0" + address[1:] if address and address.startswith("@") else address

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *fields: str) -> bool:
        if not self.address:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.sendto("\n".join(fields).encode(), self.address)
            except OSError:
                return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1", "STATUS=stopping: finishing requests, then the engines")


def watchdog_interval() -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds, when systemd asks this process for keep-alives."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000


def unit_file(config: Path | None, user: bool, watchdog_sec: int = 30) -> str:
    """A Type=notify unit: READY once the port is bound and the catalog read; the watchdog is fed from the
    event loop, so a stuck loop gets the service restarted; KillMode=control-group takes the engines along."""
    command = [sys.executable, "-m", "llmhost", "serve"] + (["--config", str(config)] if config else [])
    target = "default.target" if user else "multi-user.target"
    return f"""[Unit]
Description=llmhost: LLM serving control plane (OpenAI, Ollama, vLLM and TGI APIs)
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={" ".join(command)}
Environment=PYTHONUNBUFFERED=1
Environment=LLMHOST_LOG_FORMAT=json
WatchdogSec={watchdog_sec}
TimeoutStartSec=120
TimeoutStopSec=60
KillMode=control-group
KillSignal=SIGTERM
Restart=on-failure
RestartSec=5

[Install]
WantedBy={target}
"""


def unit_path(user: bool) -> Path:
    if user:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        return base / "systemd" / "user" / "llmhost.service"
    return Path("/etc/systemd/system/llmhost.service")


async def supervise(server: object, notifier: Notifier, status: Callable[[], str]) -> None:
    """READY once uvicorn has bound its socket (the catalog is read before it binds), then the watchdog fed
    from this event loop (a stuck loop starves it) and a STATUS line every few seconds."""
    while not getattr(server, "started", False):
        await asyncio.sleep(0.05)
    notifier.ready(status())
    interval = watchdog_interval()
    tick = min(interval, STATUS_EVERY) if interval else STATUS_EVERY
    last_status = time.monotonic()
    while True:
        await asyncio.sleep(tick)
        if interval:
            notifier.watchdog()
        if time.monotonic() - last_status >= STATUS_EVERY:
            notifier.status(status())
            last_status = time.monotonic()
