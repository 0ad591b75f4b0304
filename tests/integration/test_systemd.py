"""Running as a systemd service: sd_notify over a real datagram socket (READY only once the port answers,
watchdog pings from the event loop, STOPPING at shutdown), the unit `service install` writes, JSON logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import clean_env, free_port, write_config
from llmhost.systemd import Notifier

pytestmark = pytest.mark.integration


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    yield sock, path
    sock.close()


def receive_until(sock: socket.socket, wanted: str, timeout: float) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if wanted in messages[-1]:
            break
    return messages


def test_ready_watchdog_status_and_stopping(tmp_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    port = free_port()
    config = write_config(tmp_path, tmp_path / "data", log_format="json", log_file=str(tmp_path / "llmhost.log"))
    env = clean_env() | {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    command = [sys.executable, "-m", "llmhost", "serve", "--config", str(config), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        ready = receive_until(sock, "READY=1", 60)
        assert ready and "READY=1" in ready[-1], ready
        fields = dict(line.split("=", 1) for line in ready[-1].splitlines())
        assert fields["MAINPID"] == str(process.pid) and fields["STATUS"].startswith("serving 1 models")
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200  # bound before READY
        pings = receive_until(sock, "never", 1.2)
        assert pings.count("WATCHDOG=1") >= 3, pings  # every 0.2 s, half of WATCHDOG_USEC
        process.send_signal(signal.SIGTERM)
        assert any("STOPPING=1" in m for m in receive_until(sock, "STOPPING=1", 30))
        assert process.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    finally:
        process.kill()
        stderr = process.communicate()[1].decode()
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(r.get("event") == "catalog loaded" and r["level"] == "info" for r in records), stderr[-2000:]
    assert "catalog loaded" in (tmp_path / "llmhost.log").read_text()


def test_notifier_is_silent_without_systemd_and_speaks_to_abstract_sockets() -> None:
    assert not Notifier(address="").notify("READY=1")
    name = f"llmhost-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier(address="@" + name).status("hello")
        assert sock.recv(100) == b"STATUS=hello"


def test_service_install_writes_a_notify_unit(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    env = clean_env() | {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    command = [sys.executable, "-m", "llmhost", "service", "install", "--config", str(config)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    unit = (tmp_path / "xdg" / "systemd" / "user" / "llmhost.service").read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30", "KillMode=control-group", "Restart=on-failure"):
        assert line in unit.splitlines()
    assert f"-m llmhost serve --config {config}" in unit and "WantedBy=default.target" in unit
    assert "systemctl --user daemon-reload" in result.stdout
