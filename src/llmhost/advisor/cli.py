"""``llmhost advise``: the advisor's report in the terminal. Asks the running service (``/api/advice``); when
none answers, computes what it can offline from the config, the catalog and the GPUs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmhost.advisor import gather, report
from llmhost.config import ConfigError, Settings, load_settings
from llmhost.logging import configure_logging

console = Console()
out = console if console.is_terminal else Console(width=200)  # piped output is not wrapped at 80 columns
err = Console(stderr=True)
SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}
DASH = "—"


class ServiceError(Exception):
    """The service answered with an error: shown as is, no offline fallback."""


def advise_command(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    url: Annotated[str | None, typer.Option("--url", help="llmhost base URL (default: the config's host:port)")] = None,
    key: Annotated[str | None, typer.Option("--key", help="API key (default: $LLMHOST_API_KEY)")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="only this model")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="do not ask the service; compute offline")] = False,
) -> None:
    """How to use this hardware better, with reasons and numbers."""
    configure_logging("warning")  # log lines go to stderr: --json output stays parseable
    settings = _settings(config)
    base = url or f"http://{settings.host}:{settings.port}"
    body = None if offline else _ask(base, key or os.environ.get("LLMHOST_API_KEY"), model)
    if body is None:
        with err.status("no service answered: computing offline (catalog scan, GPUs)"):
            body = report.build(gather.offline(settings, model)).to_dict()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    render(body, base)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except (ConfigError, ValueError) as exc:
        err.print(f"[red]config error: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


def _ask(base: str, key: str | None, model: str | None) -> dict[str, Any] | None:
    """The service's report; None when no service answers; exits on an error answer (bad key, unknown model)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    params = {"model": model} if model else {}
    try:
        response = httpx.get(f"{base}/api/advice", params=params, headers=headers, timeout=60)
    except httpx.HTTPError:
        return None
    if response.status_code >= 400:
        err.print(f"[red]{base}/api/advice: {_message(response)}[/red]", highlight=False)
        raise typer.Exit(1)
    body: dict[str, Any] = response.json()
    return body


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return f"HTTP {response.status_code}"
    return str(error.get("message", error) if isinstance(error, dict) else error)


# rendering -------------------------------------------------------------------------------------------------


def num(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}{unit}"


def render(body: dict[str, Any], base: str) -> None:
    source = f"measured by the service at {base}" if body["source"] == "service" else "offline"
    out.print(f"[bold]llmhost advise[/bold] ({source})")
    for note in body["notes"]:
        out.print(f"  [dim]{note}[/dim]")
    if not body["gpus"]:
        out.print(f"  no GPU: {body['no_gpu_reason'] or 'none detected'}")
    render_score(body["score"])
    render_recommendations(body["recommendations"])
    for fit in body["fit"]:
        render_fit(fit)
    render_efficiency(body["efficiency"])
    render_contexts(body["contexts"])


def render_score(score: dict[str, Any]) -> None:
    value = score["value"]
    out.print(f"\n[bold]Hardware optimization score: {value if value is not None else DASH}/100[/bold]")
    table = Table(show_edge=False)
    for column in ("part", "points", "measures", "lost points because"):
        table.add_column(column, overflow="fold")
    for part in score["parts"]:
        points = f"{part['points']:g}/{part['max_points']:g}" if part["applies"] else "n/a"
        table.add_row(part["key"], points, part["measures"], "; ".join(part["lost_because"]) or DASH)
    out.print(table)


def render_recommendations(recs: list[dict[str, Any]]) -> None:
    out.print(f"\n[bold]Recommendations ({len(recs)})[/bold]")
    if not recs:
        out.print("  none: nothing to improve that the advisor can see")
    for rec in recs:
        style = SEVERITY_STYLE.get(rec["severity"], "")
        out.print(f"[{style}]{rec['severity']:>6}[/{style}]  [bold]{rec['title']}[/bold]  [dim]({rec['kind']})[/dim]")
        evidence = "; ".join(f"{e['what']}: {_value(e['value'])} ({e['source']})" for e in rec["evidence"])
        out.print(f"        evidence: {escape(evidence)}", highlight=False)
        out.print(f"        do: {escape(rec['action'])}", highlight=False)
        out.print(f"        expect: {escape(rec['effect'])}", highlight=False)


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return DASH if value is None else str(value)


def render_fit(fit: dict[str, Any]) -> None:
    need = fit["need"]
    out.print(
        f"\n[bold]Memory fit: {fit['model']}[/bold]  ctx {need['ctx_per_slot']} x {need['slots']} slots needs "
        f"{num(need['total_mib'])} MiB (weights {num(need['weights_mib'])}, KV {num(need['kv_mib'])}, compute "
        f"{num(need['compute_mib'])}, attention scores {num(need['attention_scores_mib'])}; estimate)",
        highlight=False,
    )
    out.print(
        f"  KV q8_0 frees {num(need['kv_q8_0_frees_mib'])} MiB, q4_0 frees {num(need['kv_q4_0_frees_mib'])} MiB; "
        f"flash attention ({need['flash_attention']}) frees {num(need['flash_attention_frees_mib'])} MiB; "
        f"configured on {_value(fit['configured']['devices_mib'])} MiB: "
        f"{'fits' if fit['configured']['fits'] else 'does NOT fit'}",
        highlight=False,
    )
    table = Table(show_edge=False)
    columns = ("devices", "fits", "split", "need MiB", "capacity MiB", "free after MiB", "context fits", "per slot")
    for column in columns:
        table.add_column(column, overflow="fold")
    for s in fit["sets"]:
        split = ",".join(f"{r:g}" for r in s["tensor_split"]) if s["tensor_split"] else s["split_mode"] or DASH
        table.add_row(
            s["label"] + (f" ({s['note']})" if s["note"] else ""),
            "[green]yes[/green]" if s["fits"] else "[red]no[/red]",
            split,
            _value({k: round(v) for k, v in s["need_mib"].items()}),
            num(sum(s["capacity_mib"].values())),
            num(s["free_after_mib"]),
            num(s["context_tokens"]),
            num(s["context_per_slot"]),
        )
    out.print(table)


def render_efficiency(eff: dict[str, Any]) -> None:
    currency, price = eff["currency"], eff["electricity_price_per_kwh"]
    priced = f"at {price:g} {currency}/kWh" if price is not None else "no electricity price set"
    out.print(f"\n[bold]Efficiency and cost[/bold] ({priced})")
    table = Table(show_edge=False)
    for column in ("model", "GPUs", "power W", "tok/s", "J/token", "kWh per M", f"{currency} per M", "note"):
        table.add_column(column, overflow="fold")
    for m in eff["models"]:
        gpus = ",".join(map(str, m["gpus"])) or "CPU"
        note = m["not_measured"] or (m["power_basis"] or "")
        if m["shared_with"]:
            note += f"; GPU shared with {', '.join(m['shared_with'])}"
        table.add_row(
            m["model"],
            gpus,
            num(m["power_w"], 1),
            num(m["tokens_per_second"], 1),
            num(m["joules_per_token"], 3),
            num(m["kwh_per_million_tokens"], 3),
            num(m["cost_per_million_tokens"], 4),
            note,
        )
    out.print(table)
    if eff["api_prices"]:
        prices = Table(title=f"API prices ({currency} per M tokens)", show_edge=False)
        for column in ("API", "input", "output"):
            prices.add_column(column)
        for p in eff["api_prices"]:
            prices.add_row(p["name"], f"{p['input_per_m']:g}", f"{p['output_per_m']:g}")
        out.print(prices)


def render_contexts(contexts: list[dict[str, Any]]) -> None:
    out.print("\n[bold]Context lengths[/bold]")
    table = Table(show_edge=False)
    for column in ("model", "true (GGUF)", "Ollama num_ctx", "ours per slot", "slots", "ours total"):
        table.add_column(column)
    for c in contexts:
        table.add_row(
            c["model"],
            num(c["true_context"]),
            num(c["ollama_num_ctx"]),
            num(c["ctx_per_slot"]),
            str(c["slots"]),
            num(c["total_context"]),
        )
    out.print(table)
