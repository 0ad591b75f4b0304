"""The `llmhost` command line (typer + rich)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from llmhost.advisor.cli import advise_command
from llmhost.bench.cli import bench_app
from llmhost.config import ConfigError, Settings, config_path_from_env, load_settings
from llmhost.tuner.cli import tune_app

app = typer.Typer(
    help="llmhost: serve GGUF models with llama.cpp behind the OpenAI, Ollama, vLLM and TGI APIs.", no_args_is_help=True
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(bench_app, name="bench")
app.add_typer(tune_app, name="tune")
app.command("advise")(advise_command)
console = Console()
# Piped output (scripts, tests) must not be wrapped at 80 columns.
table_console = console if console.is_terminal else Console(width=240)
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file (default: the platformdirs path)")
]
EngineOption = Annotated[Path | None, typer.Option("--llama-server", help="llama-server binary to use")]


def _settings(config: Path | None, llama_server: Path | None = None, **overrides: object) -> Settings:
    try:
        settings = load_settings(config, **overrides)
        if llama_server is not None:
            settings.engine.llama_server = llama_server
        return settings
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        err_console.print(f"[red]config error: {exc}[/red]".replace("\n", " "), highlight=False)
        raise typer.Exit(2) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 11436)")] = None,
    llama_server: EngineOption = None,
    model_dir: Annotated[list[Path] | None, typer.Option(help="extra directory of .gguf files")] = None,
    insecure: Annotated[bool, typer.Option(help="allow a non-loopback bind without API keys")] = False,
) -> None:
    """Serve every model of the catalog on one port."""
    import uvicorn

    from llmhost.app import create_app
    from llmhost.logging import configure_logging

    settings = _settings(config, llama_server, host=host, port=port)
    if model_dir:
        settings.model_dirs = [*settings.model_dirs, *model_dir]
    if not _is_loopback(settings.host) and not insecure and not _has_keys(settings):
        err_console.print(
            f"refusing to bind {settings.host}: no API keys are configured (auth.keys or auth.key_file), so anyone "
            "on the network could use it. Add a key with `llmhost keys add NAME`, bind 127.0.0.1, or pass "
            "--insecure if you really mean it."
        )
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    config_path = config or config_path_from_env()
    overrides = {"host": host, "port": port}
    application = create_app(settings, config_path if config_path.exists() else None, overrides)
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host=settings.host,
            port=settings.port,
            workers=1,
            log_level=settings.log_level,
            access_log=settings.log_level == "debug",
            log_config=None,
            timeout_graceful_shutdown=int(settings.shutdown_grace),
        )
    )
    asyncio.run(_serve(server, application))


async def _serve(server: Any, application: Any) -> None:
    from llmhost.systemd import Notifier, supervise

    notifier = Notifier()
    service = application.state.service
    tasks = [asyncio.create_task(_announce_shutdown(server, application.state.stopping))]
    live = application.state.live
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGHUP, lambda: tasks.append(asyncio.create_task(live.reload("signal")))
    )
    if notifier.enabled:
        tasks.append(asyncio.create_task(supervise(server, notifier, service.status_line)))
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()


async def _announce_shutdown(server: Any, stopping: asyncio.Event) -> None:
    """uvicorn waits for open connections before the app hears of the shutdown: endless streams must hear
    it as soon as the signal arrives."""
    while not server.should_exit:
        await asyncio.sleep(0.1)
    stopping.set()


@app.command()
def setup(config: ConfigOption = None, llama_server: EngineOption = None) -> None:
    """Install a CPU llama-server (built once per machine) and the default model; show where they went."""
    from llmhost.installer import InstallError, run_setup

    settings = _settings(config, llama_server)
    try:
        run_setup(settings, console)
    except InstallError as exc:
        err_console.print(f"[red]setup failed:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command()
def models(config: ConfigOption = None) -> None:
    """List the models llmhost can serve."""
    from llmhost.models.catalog import Catalog

    settings = _settings(config)
    catalog = Catalog(settings)
    with console.status("reading model metadata"):
        entries = catalog.scan()
    table = Table(title="models")
    table.add_column("name", no_wrap=True)
    for column in ("source", "arch", "size", "quant", "true ctx", "configured ctx"):
        table.add_column(column)
    for entry in entries:
        meta = entry.meta
        profile = catalog.profile(entry)
        table.add_row(
            entry.name,
            entry.source,
            meta.architecture if meta else f"[red]{entry.error}[/red]",
            _human_size(entry.size),
            (meta.quantization if meta else None) or "n/a",
            str(meta.context_length) if meta and meta.context_length else "n/a",
            str(profile.ctx),
        )
    table_console.print(table)
    if not entries:
        console.print("no models found: run `llmhost setup`, or add model_dirs to the config")


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective configuration (file + environment + defaults) as YAML."""
    settings = _settings(config)
    source = config or config_path_from_env()
    state = "found" if source.exists() else "not present, defaults apply"
    sys.stdout.write(f"# config file: {source} ({state})\n")
    effective = settings.model_dump(mode="json")
    for provider in effective["providers"]:
        if provider.get("api_key"):
            provider["api_key"] = "<hidden>"
    sys.stdout.write(yaml.safe_dump(effective, sort_keys=False))


UrlOption = Annotated[str | None, typer.Option(help="service URL (default: from the config)")]


def _has_keys(settings: Settings) -> bool:
    from llmhost.auth import KeyRing

    try:
        return KeyRing(settings.auth).enabled
    except ValueError as exc:
        err_console.print(f"config error: auth: {exc}")
        raise typer.Exit(2) from None


keys_app = typer.Typer(help="API keys: each has a name, limits and allowed models.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("add")
def keys_add(
    name: str,
    config: ConfigOption = None,
    admin: Annotated[bool, typer.Option(help="may use /admin, the dashboard's actions, pull, copy, delete")] = False,
    model: Annotated[list[str] | None, typer.Option(help="allowed model or glob (repeat); default: all")] = None,
    rpm: Annotated[int | None, typer.Option(help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(help="tokens per minute")] = None,
    max_parallel: Annotated[int | None, typer.Option(help="requests in flight at once")] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="default: auth.key_file, else keys.yaml beside the config")
    ] = None,
) -> None:
    """Make a new key, store only its digest in the key file, and print the key once."""
    from llmhost.auth import digest, load_key_file, new_key

    settings = _settings(config)
    beside_config = (config or config_path_from_env()).with_name("keys.yaml")
    path = (key_file or settings.auth.key_file or beside_config).expanduser()
    existing = load_key_file(path)
    if any(entry.name == name for entry in existing):
        err_console.print(f"a key named {name!r} is already in {path}")
        raise typer.Exit(1)
    key = new_key()
    entry = {"name": name, "key_sha256": digest(key), "models": model or [], "rpm": rpm, "tpm": tpm}
    entry |= {"max_parallel": max_parallel, "admin": admin}
    entries = [e.model_dump(mode="json", exclude_none=True) for e in existing]
    entries.append({k: v for k, v in entry.items() if v not in (None, [])} | {"admin": admin})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"keys": entries}, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    console.print(f"key for {name} (shown once, store it now): [bold]{key}[/bold]")
    if settings.auth.key_file is None and key_file is None:
        console.print(f"written to {path}; point auth.key_file at it in the config to use it")
    else:
        console.print(f"written to {path}; restart llmhost to use it")


def _admin(config: Path | None, url: str | None, method: str, path: str) -> Any:
    import httpx

    settings = _settings(config)
    base = url or f"http://{settings.host}:{settings.port}"
    try:
        key = os.environ.get("LLMHOST_API_KEY")
        headers = {"authorization": f"Bearer {key}"} if key else {}
        response = httpx.request(method, f"{base}{path}", timeout=600, headers=headers)
    except httpx.HTTPError as exc:
        err_console.print(f"cannot reach llmhost at {base}: {exc}")
        raise typer.Exit(1) from None
    body = response.json()
    if response.status_code >= 400:
        error = body.get("error", body)
        err_console.print(f"[red]{error.get('message', error) if isinstance(error, dict) else error}[/red]")
        raise typer.Exit(1)
    return body


@app.command()
def ps(config: ConfigOption = None, url: UrlOption = None) -> None:
    """Show the loaded engines of a serving llmhost: state, slots, queue, memory, expiry, and recent evictions."""
    status = _admin(config, url, "GET", "/admin/engines")
    table = Table(title="engines")
    table.add_column("model", no_wrap=True)
    for column in ("state", "pid", "port", "uptime", "slots", "queued", "memory MiB", "expires", "reason"):
        table.add_column(column, overflow="fold")
    for e in status["engines"]:
        memory = ", ".join(f"{device} {mib:.0f}" for device, mib in e["memory_mib"].items())
        expires = "never" if e["expires_in_s"] is None else f"{max(e['expires_in_s'], 0):.0f} s"
        table.add_row(
            e["model"] + (" (pinned)" if e["pinned"] else ""),
            e["state"],
            str(e["pid"] or ""),
            str(e["port"] or ""),
            f"{e['uptime_s']} s" if e["uptime_s"] is not None else "",
            f"{e['slots_busy']}/{e['slots_total']}",
            str(e["queued"]),
            memory + ("" if e["memory_reported"] else " (estimate)"),
            expires,
            e["reason"] or "",
        )
    table_console.print(table)
    capacity = ", ".join(f"{device} {mib:.0f} MiB" for device, mib in status["capacity_mib"].items())
    console.print(f"capacity: {capacity}")
    for event in status["events"][-8:]:
        when = time.strftime("%H:%M:%S", time.localtime(event["time"]))
        console.print(
            f"{when} {event['event']} {event['model']}" + (f" ({event['reason']})" if event["reason"] else "")
        )


@app.command()
def status(
    config: ConfigOption = None,
    url: UrlOption = None,
    watch: Annotated[bool, typer.Option(help="refresh until interrupted")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 1.0,
    count: Annotated[int | None, typer.Option(help="with --watch: stop after this many refreshes")] = None,
) -> None:
    """GPUs, host, engines and active requests of a serving llmhost, live with --watch."""
    from rich.live import Live

    from llmhost.status_view import render

    if not watch:
        console.print(render(_admin(config, url, "GET", "/api/metrics/dashboard")))
        return
    refreshes = 0
    with Live(render(_admin(config, url, "GET", "/api/metrics/dashboard")), console=console) as live:
        try:
            while count is None or refreshes < count - 1:
                time.sleep(interval)
                live.update(render(_admin(config, url, "GET", "/api/metrics/dashboard")))
                refreshes += 1
        except KeyboardInterrupt:
            pass


@app.command()
def providers(config: ConfigOption = None, url: UrlOption = None) -> None:
    """Remote providers of a serving llmhost: health, latency, last error, load and models."""
    status = _admin(config, url, "GET", "/admin/providers")
    table = Table(title="providers")
    for column in ("name", "kind", "url", "state", "latency", "outstanding", "models", "last error"):
        table.add_column(column, overflow="fold")
    for p in status["providers"]:
        latency = "—" if p["latency_ms"] is None else f"{p['latency_ms']:.0f} ms"
        table.add_row(
            p["name"],
            p["kind"],
            p["base_url"],
            p["state"],
            latency,
            str(p["outstanding"]),
            ", ".join(p["models"]) or "—",
            p["last_error"] or "",
        )
    console.print(table)


service_app = typer.Typer(help="Run llmhost as a systemd service.", no_args_is_help=True)
app.add_typer(service_app, name="service")


@service_app.command("install")
def service_install(
    config: ConfigOption = None,
    system: Annotated[bool, typer.Option(help="a system unit in /etc/systemd/system (needs root)")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the unit instead of writing it")] = False,
) -> None:
    """Write a Type=notify systemd unit (watchdog, engines stopped with the service) and say how to start it."""
    from llmhost.systemd import unit_file, unit_path

    config = (config or config_path_from_env()).expanduser().resolve()
    text = unit_file(config if config.exists() else None, user=not system)
    if dry_run:
        sys.stdout.write(text)
        return
    path = unit_path(user=not system)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    scope = "" if system else " --user"
    console.print(f"wrote {path}\nnow run: systemctl{scope} daemon-reload && systemctl{scope} enable --now llmhost")
    if not system:
        console.print("to keep it running after you log out: loginctl enable-linger $USER")


@app.command()
def load(name: str, config: ConfigOption = None, url: UrlOption = None) -> None:
    """Load a model now (evicting others if the policy says so) and wait until it is ready."""
    status = _admin(config, url, "POST", f"/admin/models/{name}/load")
    console.print(f"{status['model']}: {status['state']} (pid {status['pid']}, port {status['port']})")


@app.command()
def unload(name: str, config: ConfigOption = None, url: UrlOption = None) -> None:
    """Unload a model once its in-flight requests finish."""
    status = _admin(config, url, "POST", f"/admin/models/{name}/unload")
    console.print(f"{status['model']}: {'unloaded' if status['unloaded'] else 'was not loaded'}")


@app.command()
def version() -> None:
    """Print the llmhost version."""
    from llmhost import __version__

    console.print(__version__)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    app()
