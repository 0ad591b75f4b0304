"""``llmhost bench``: run a benchmark against any OpenAI-compatible URL, list and show stored runs."""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, NamedTuple

import typer
from rich.console import Console
from rich.table import Table

from llmhost.bench.client import Api, Target
from llmhost.bench.db import default_db_path
from llmhost.bench.metrics import Slo
from llmhost.bench.progress import BenchProgress, progress_bar
from llmhost.bench.report import summary_table, write_csv, write_json
from llmhost.bench.runner import BenchConfig, BenchError, BenchRun, resolve_model, run_benchmark
from llmhost.bench.store import BenchStore
from llmhost.bench.workload import LengthSpec, Level

bench_app = typer.Typer(help="Benchmark an endpoint or one of our models.", no_args_is_help=True)
console = Console()
table_console = console if console.is_terminal else Console(width=240)  # piped output is not wrapped
err_console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="llmhost config (for data_dir and URL)")]
DataDirOption = Annotated[Path | None, typer.Option(help="where bench.db lives (default: the config's data_dir)")]


def parse_list(text: str | None, kind: type[int] | type[float], what: str) -> list[float]:
    if not text:
        return []
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what}: {text!r} is not a comma-separated list of numbers") from None
    if any(value <= 0 for value in values):
        raise typer.BadParameter(f"{what}: values must be positive")
    return values


def build_levels(concurrency: str | None, rate: str | None, max_concurrency: int | None) -> tuple[Level, ...]:
    closed = [Level(concurrency=int(c)) for c in parse_list(concurrency, int, "--concurrency")]
    opened = [Level(rate=r, max_concurrency=max_concurrency) for r in parse_list(rate, float, "--rate")]
    return tuple(closed + opened) or tuple(Level(concurrency=c) for c in (1, 2, 4, 8))


def lengths_option(lengths: str | None, input_tokens: int, output_tokens: int) -> LengthSpec:
    try:
        return LengthSpec.parse(lengths) if lengths else LengthSpec.fixed(input_tokens, output_tokens)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


class LocalDefaults(NamedTuple):
    data_dir: Path
    url: str  # the llmhost service of this config


@functools.cache
def _local_defaults(config: Path | None) -> LocalDefaults:
    from llmhost.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return LocalDefaults(settings.data_dir, f"http://{settings.host}:{settings.port}/v1")


def open_store(config: Path | None, data_dir: Path | None) -> BenchStore:
    return BenchStore(default_db_path(data_dir or _local_defaults(config).data_dir))


@bench_app.command("run")
def run_command(
    url: Annotated[str | None, typer.Option(help="base URL, e.g. http://127.0.0.1:8080/v1 (default: llmhost)")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="model name (default: the first listed)")] = "",
    api: Annotated[str, typer.Option(help="chat or completions")] = "chat",
    concurrency: Annotated[str | None, typer.Option(help="closed-loop levels, e.g. 1,2,4,8")] = None,
    rate: Annotated[str | None, typer.Option(help="open-loop Poisson levels in req/s, e.g. 0.5,1,2")] = None,
    max_concurrency: Annotated[int | None, typer.Option(help="cap on in-flight requests at --rate levels")] = None,
    requests: Annotated[int, typer.Option(help="measured requests per level")] = 20,
    warmup: Annotated[int, typer.Option(help="unmeasured requests before the first level")] = 2,
    input_tokens: Annotated[int, typer.Option("--input", help="prompt tokens (D(in,out))")] = 128,
    output_tokens: Annotated[int, typer.Option("--output", help="output tokens (D(in,out))")] = 64,
    lengths: Annotated[str | None, typer.Option(help="D(in,out), N(m,sd)/(m,sd) or U(a,b)/(a,b)")] = None,
    ignore_eos: Annotated[bool, typer.Option(help="ask for exactly the output tokens")] = True,
    slo_ttft_ms: Annotated[float | None, typer.Option(help="goodput SLO on TTFT")] = None,
    slo_tpot_ms: Annotated[float | None, typer.Option(help="goodput SLO on TPOT")] = None,
    slo_e2e_ms: Annotated[float | None, typer.Option(help="goodput SLO on end-to-end latency")] = None,
    seed: int = 0,
    timeout: Annotated[float, typer.Option(help="seconds of silence before a request times out")] = 300.0,
    api_key: Annotated[str | None, typer.Option(envvar="OPENAI_API_KEY", help="bearer token")] = None,
    label: Annotated[str, typer.Option(help="a note stored with the run")] = "",
    json_path: Annotated[Path | None, typer.Option("--json", help="write the run as JSON")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="write one CSV row per level")] = None,
    store: Annotated[bool, typer.Option(help="keep the run in <data_dir>/bench.db")] = True,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Measure TTFT, TPOT, ITL, E2E, throughput and goodput at each load level."""
    if api not in ("chat", "completions"):
        raise typer.BadParameter("--api must be chat or completions")
    chosen_api: Api = "chat" if api == "chat" else "completions"
    target = Target(url or _local_defaults(config).url, model, chosen_api, api_key)
    try:
        bench_config = BenchConfig(
            target=target,
            levels=build_levels(concurrency, rate, max_concurrency),
            requests=requests,
            warmup=warmup,
            lengths=lengths_option(lengths, input_tokens, output_tokens),
            slo=Slo(slo_ttft_ms, slo_tpot_ms, slo_e2e_ms),
            ignore_eos=ignore_eos,
            seed=seed,
            timeout=timeout,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    run = _run_with_progress(bench_config, label)
    table_console.print(summary_table(run))
    if json_path:
        write_json(run, json_path)
    if csv_path:
        write_csv(run, csv_path)
    if store:
        bench_store = BenchStore(default_db_path(data_dir or _local_defaults(config).data_dir))
        bench_store.save(run)
        bench_store.close()
        console.print(f"stored as run {run.id} in {bench_store.db.path}")


def _run_with_progress(config: BenchConfig, label: str) -> BenchRun:
    async def main() -> BenchRun:
        resolved = replace(config, target=await resolve_model(config.target))
        with progress_bar() as progress:
            return await run_benchmark(resolved, BenchProgress(progress), label=label)

    try:
        return asyncio.run(main())
    except BenchError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@bench_app.command("list")
def list_command(
    limit: int = 20,
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Stored runs, newest first."""
    bench_store = open_store(config, data_dir)
    runs = bench_store.list_runs(limit=limit, model=model)
    bench_store.close()
    table = Table("id", "when", "source", "model", "url", "lengths", "levels", "peak out tok/s", "label")
    for run in runs:
        when = datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M")
        peak = f"{run.peak_output_throughput:.1f}" if run.peak_output_throughput is not None else "-"
        table.add_row(run.id, when, run.source, run.model, run.base_url, run.lengths, str(run.levels), peak, run.label)
    table_console.print(table)


@bench_app.command("show")
def show_command(
    run_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the stored JSON")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """One stored run, as a table or JSON."""
    bench_store = open_store(config, data_dir)
    run = bench_store.get_run(run_id)
    bench_store.close()
    if run is None:
        err_console.print(f"[red]no run {run_id}[/red]")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(run.to_dict(), indent=2))
    else:
        table_console.print(summary_table(run))
