"""``llmhost tune``: search llama-server parameters for a model with real trial engines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table
from typer._click.core import Command, Context  # typer vendors click: its groups take these types
from typer.core import TyperGroup

from llmhost.bench.cli import lengths_option
from llmhost.bench.db import Database, default_db_path
from llmhost.bench.metrics import Slo
from llmhost.bench.progress import BenchProgress, progress_bar
from llmhost.bench.store import BenchStore
from llmhost.tuner.apply import (
    Applied,
    ApplyError,
    admin_key,
    apply_offline,
    apply_via_service,
    rollback_offline,
    rollback_via_service,
    service_answers,
    service_url,
)
from llmhost.tuner.compare import Comparison, compare_tpe_with_grid, feasible_points
from llmhost.tuner.events import TuneEvent
from llmhost.tuner.executor import LocalLlamaServerExecutor, TrialFailed
from llmhost.tuner.job import JobSummary, TuneConfig, TuningJob
from llmhost.tuner.objective import Objective
from llmhost.tuner.records import TrialRecord
from llmhost.tuner.space import SearchSpace, SpaceError, preset_dict
from llmhost.tuner.space import build_space as space_from
from llmhost.tuner.store import TunerStore


class RunByDefault(TyperGroup):
    """``llmhost tune MODEL ...`` is ``llmhost tune run MODEL ...``: a first word that names no command is a model."""

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


tune_app = typer.Typer(
    cls=RunByDefault,
    help="Search the best engine parameters for a model: llmhost tune MODEL [OPTIONS] runs a job (MODEL may be"
    " 'default'); the commands below list, show and compare jobs.",
    no_args_is_help=True,
)
console = Console()
table_console = console if console.is_terminal else Console(width=240)  # piped output is not wrapped
err_console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="llmhost config file")]
DataDirOption = Annotated[Path | None, typer.Option(help="where bench.db lives (default: the config's data_dir)")]
SpaceOption = Annotated[Path | None, typer.Option(help="search space YAML (see llmhost.tuner.space)")]
PresetOption = Annotated[str | None, typer.Option(help="slots, cpu, gpu or multi-gpu (default: by engine build)")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="fix a parameter for every trial: name=value")]
ConcurrencyOption = Annotated[int, typer.Option(help="closed-loop users during each trial")]
TrialsOption = Annotated[int, typer.Option(help="search trials (the baseline runs in addition)")]
ObjectiveOption = Annotated[str, typer.Option(help="throughput, goodput, ttft, tpot, itl, e2e, ...")]
StatisticOption = Annotated[str, typer.Option(help="statistic for latency objectives and SLOs: mean, p50..p99")]
RequestsOption = Annotated[int, typer.Option(help="measured requests per trial")]
WarmupOption = Annotated[int | None, typer.Option(help="unmeasured requests per trial (default: concurrency)")]
InputOption = Annotated[int, typer.Option("--input", help="prompt tokens")]
OutputOption = Annotated[int, typer.Option("--output", help="output tokens")]
LengthsOption = Annotated[str | None, typer.Option(help="D(in,out), N(..)/(..) or U(..)/(..)")]
SloOption = Annotated[float | None, typer.Option(help="limit in ms: a constraint at --statistic")]


def _settings(config: Path | None) -> Any:
    from llmhost.config import ConfigError, load_settings
    from llmhost.logging import configure_logging

    configure_logging("warning")
    try:
        return load_settings(config)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def build_space(space: Path | None, preset: str | None, fixed: list[str] | None) -> SearchSpace:
    try:
        data = yaml.safe_load(space.read_text(encoding="utf-8")) if space else None
        if data is not None and not isinstance(data, dict):
            raise SpaceError(f"{space}: the top level must be a mapping")
        return space_from(data, preset, parse_assignments(fixed or []))
    except (OSError, yaml.YAMLError, SpaceError) as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_assignments(items: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set {item!r}: expected name=value")
        values[name.strip()] = yaml.safe_load(raw)
    return values


def open_stores(settings: Any, data_dir: Path | None) -> tuple[TunerStore, BenchStore]:
    database = Database(default_db_path(data_dir or settings.data_dir))
    return TunerStore(database), BenchStore(database)


def make_executor(settings: Any, model: str) -> LocalLlamaServerExecutor:
    from llmhost.types import LlmhostError

    try:
        return LocalLlamaServerExecutor.from_settings(settings, model)
    except (TrialFailed, LlmhostError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


class TuneProgress:
    """An overall bar over the trials, the running trial's benchmark bars, and one line per finished trial."""

    def __init__(self, progress: Progress, total: int, objective: Objective) -> None:
        self.progress = progress
        self.objective = objective
        self.overall: TaskID = progress.add_task("trials", total=total, note="")
        self.bench: BenchProgress | None = None
        self.best: float | None = None

    def __call__(self, event: TuneEvent) -> None:
        trial = event.trial
        if event.kind == "trial_started" and trial is not None:
            self.bench = BenchProgress(self.progress, prefix=f"  #{trial.number} ")
        elif event.kind == "trial_progress" and self.bench is not None and event.bench is not None:
            self.bench(event.bench)
        elif event.kind == "trial_finished" and trial is not None:
            self._finished(trial)
        elif event.kind == "trial_skipped":
            self.progress.console.print(f"  skipped {event.data['params']}: {event.data['reason']}", style="dim")

    def _finished(self, trial: TrialRecord) -> None:
        if self.bench is not None:
            self.bench.remove()
            self.bench = None
        if trial.feasible and self.objective.improves(trial.value, self.best):
            self.best = trial.value
        best = f"best {self.best:.2f}" if self.best is not None else ""
        self.progress.update(self.overall, advance=1, note=best)
        self.progress.console.print(trial_line(trial))


def trial_line(trial: TrialRecord) -> str:
    params = format_params(trial.params) or "default profile"
    if trial.status != "complete":
        return f"#{trial.number} {params}: [red]{trial.status}[/red] {trial.reason or ''}"
    value = f"{trial.value:.2f}" if trial.value is not None else "-"
    note = "" if trial.feasible else " [yellow](infeasible)[/yellow]"
    return f"#{trial.number} {params}: {value}{note}"


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in params.items())


def run_job(job: TuningJob, total: int) -> JobSummary:
    with progress_bar() as progress:
        job.events.listen(TuneProgress(progress, total, job.config.objective))
        try:
            return asyncio.run(job.run())
        except KeyboardInterrupt:
            progress.stop()
            err_console.print(f"interrupted; resume with: llmhost tune {job.config.model} --job-id {job.id}")
            raise typer.Exit(130) from None


@tune_app.command("run")
def run_command(
    model: Annotated[str, typer.Argument(help="model name as the catalog knows it")],
    concurrency: ConcurrencyOption = 8,
    trials: TrialsOption = 20,
    strategy: Annotated[str, typer.Option(help="tpe, grid or random")] = "tpe",
    space: SpaceOption = None,
    preset: PresetOption = None,
    fixed: SetOption = None,
    objective: ObjectiveOption = "throughput",
    statistic: StatisticOption = "p99",
    slo_ttft_ms: SloOption = None,
    slo_tpot_ms: SloOption = None,
    slo_e2e_ms: SloOption = None,
    requests: RequestsOption = 32,
    warmup: WarmupOption = None,
    input_tokens: InputOption = 128,
    output_tokens: OutputOption = 64,
    lengths: LengthsOption = None,
    seed: int = 0,
    baseline: Annotated[bool, typer.Option(help="run the current profile as trial 0")] = True,
    job_id: Annotated[str | None, typer.Option(help="resume this job, or name a new one")] = None,
    apply: Annotated[
        bool, typer.Option(help="apply the best profile when it beats the baseline (live config, reversible)")
    ] = True,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the summary as JSON")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Run (or resume) a tuning job, print the best parameters, and apply them when they beat the baseline:
    through the running service's admin API, or by writing the config file (validated, recorded, reversible)."""
    settings = _settings(config)
    tuner_store, bench_store = open_stores(settings, data_dir)
    existing = tuner_store.get_job(job_id) if job_id else None
    executor = make_executor(settings, existing.model if existing else model)
    if existing is not None:
        job = TuningJob.resume(existing.id, executor, tuner_store, bench_store=bench_store)
        console.print(f"resuming {job.id} ({existing.status})")
    else:
        tune_config = _tune_config(
            model=executor.model,
            space=build_space(space, preset, fixed),
            strategy=strategy,
            objective=_objective(objective, statistic, Slo(slo_ttft_ms, slo_tpot_ms, slo_e2e_ms)),
            trials=trials,
            concurrency=concurrency,
            requests=requests,
            warmup=warmup,
            lengths=lengths_option(lengths, input_tokens, output_tokens),
            seed=seed,
            baseline=baseline,
        )
        job = TuningJob(tune_config, executor, tuner_store, bench_store=bench_store, job_id=job_id)
    summary = run_job(job, job.config.trials + int(job.config.baseline))
    print_summary(summary)
    if json_path:
        json_path.write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
    if apply:
        apply_best(summary, settings, config, executor.aliases)


def apply_best(summary: JobSummary, settings: Any, config: Path | None, aliases: tuple[str, ...]) -> None:
    """Apply the best profile when it is new and beat the baseline."""
    profile, reason = summary.best_profile(), summary.nothing_to_apply
    if reason is None and not summary.beats_baseline:
        reason = "no trial beat the current profile"
    if reason is not None or profile is None:
        console.print(f"nothing applied: {reason}")
        return
    model = summary.config.model
    try:
        applied = _apply(settings, config, model, aliases, profile)
    except ApplyError as exc:
        err_console.print(f"[red]not applied: {exc}[/red]")
        raise typer.Exit(1) from None
    if applied.result != "applied":
        err_console.print(f"[red]change {applied.change_id} {applied.result}: {applied.error}[/red]")
        raise typer.Exit(1)
    where = escape(f"models[{model}]")
    console.print(f"applied to {where} via {applied.via} (change {applied.change_id}): {format_params(profile)}")
    console.print(f"roll back with: {escape(applied.rollback_hint)}", soft_wrap=True)


def _apply(
    settings: Any, config: Path | None, model: str, aliases: tuple[str, ...], profile: dict[str, Any]
) -> Applied:
    base = service_url(settings)
    if service_answers(base):
        return apply_via_service(base, admin_key(settings), model, aliases, profile)
    return asyncio.run(apply_offline(settings, config_file(config), model, aliases, profile))


def config_file(config: Path | None) -> Path:
    from llmhost.config import config_path_from_env

    return (config or config_path_from_env()).expanduser()


@tune_app.command("rollback")
def rollback_command(
    change_id: Annotated[int, typer.Argument(help="the configuration change to undo (as `tune` printed it)")],
    config: ConfigOption = None,
) -> None:
    """Undo a configuration change (e.g. an applied tuning result): through the running service, else offline."""
    settings = _settings(config)
    base = service_url(settings)
    try:
        if service_answers(base):
            applied = rollback_via_service(base, admin_key(settings), change_id)
        else:
            applied = asyncio.run(rollback_offline(settings, config_file(config), change_id))
    except ApplyError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"change {change_id} undone via {applied.via} (change {applied.change_id}, {applied.result})")


def _objective(metric: str, statistic: str, slo: Slo) -> Objective:
    try:
        return Objective(metric, statistic, slo, statistic)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _tune_config(**values: Any) -> TuneConfig:
    try:
        return TuneConfig(**values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def trials_table(summary: JobSummary) -> Table:
    best = summary.best
    names = summary.config.space.names
    label = summary.config.objective.label
    table = Table("#", "kind", *names, "status", label, "TTFT p99 ms", "TPOT p99 ms", "other CPU", "note")
    for trial in summary.trials:
        style = "bold green" if best is not None and trial.number == best.number else None
        table.add_row(*_trial_row(trial, names), style=style)
    return table


def _trial_row(trial: TrialRecord, names: list[str]) -> list[str]:
    metrics = trial.metrics
    ttft = metrics.ttft_ms.p99 if metrics and metrics.ttft_ms else None
    tpot = metrics.tpot_ms.p99 if metrics and metrics.tpot_ms else None
    other = trial.engine.get("other_cpu")
    note = trial.reason or ("" if trial.status != "complete" or trial.feasible else "infeasible")
    return [
        str(trial.number),
        trial.kind,
        *(str(trial.params.get(name, "")) for name in names),
        trial.status,
        _num(trial.value, 2),
        _num(ttft),
        _num(tpot),
        f"{other:.0%}" if other is not None else "-",
        note,
    ]


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_summary(summary: JobSummary) -> None:
    table_console.print(trials_table(summary))
    best, baseline = summary.best, summary.baseline
    label = summary.config.objective.label
    if best is None:
        console.print("[red]no feasible trial[/red]")
        return
    params = format_params(best.params) or "default profile"
    console.print(f"best: trial #{best.number} {params}: {best.value:.2f} {label}")
    if baseline is not None and baseline.value is not None and summary.improvement is not None:
        console.print(f"baseline (default profile): {baseline.value:.2f}; improvement {summary.improvement:+.1%}")
    snippet = summary.profile_snippet()
    if snippet:
        console.print("profile to apply (config.yaml):")
        typer.echo(snippet.rstrip())


@tune_app.command("list")
def list_command(
    limit: int = 20,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Stored tuning jobs, newest first."""
    tuner_store, _ = open_stores(_settings(config), data_dir)
    table = Table("id", "created", "model", "status", "strategy", "objective", "trials")
    for job in tuner_store.list_jobs(limit=limit):
        created = datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M")
        done = len(tuner_store.trials(job.id))
        cfg = job.config
        table.add_row(job.id, created, job.model, job.status, cfg["strategy"], cfg["objective"]["metric"], str(done))
    table_console.print(table)


@tune_app.command("show")
def show_command(
    job_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """A job's trials, its best trial and the profile snippet."""
    tuner_store, _ = open_stores(_settings(config), data_dir)
    job = tuner_store.get_job(job_id)
    if job is None:
        err_console.print(f"[red]no tuning job {job_id}[/red]")
        raise typer.Exit(1)
    summary = JobSummary(job, TuneConfig.from_dict(job.config), tuner_store.trials(job_id))
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        console.print(f"{job.id}: {job.model}, {job.status}")
        print_summary(summary)


@tune_app.command("presets")
def presets_command() -> None:
    """The built-in search spaces."""
    for name in ("slots", "cpu", "gpu", "multi-gpu"):
        typer.echo(yaml.safe_dump({name: preset_dict(name)}, sort_keys=False, default_flow_style=None).rstrip())


@tune_app.command("compare")
def compare_command(
    model: Annotated[str, typer.Argument(help="model name as the catalog knows it")],
    concurrency: ConcurrencyOption = 8,
    space: SpaceOption = None,
    preset: PresetOption = "slots",
    fixed: SetOption = None,
    objective: ObjectiveOption = "throughput",
    statistic: StatisticOption = "p99",
    requests: RequestsOption = 16,
    warmup: WarmupOption = None,
    input_tokens: InputOption = 128,
    output_tokens: OutputOption = 32,
    lengths: LengthsOption = None,
    tolerance: Annotated[float, typer.Option(help="within this fraction of the grid optimum")] = 0.05,
    confirm_rounds: Annotated[int, typer.Option(help="interleaved re-measurements of baseline and tuned")] = 2,
    seed: int = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the comparison as JSON")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the whole grid, then TPE with the same budget; report tuned vs default and TPE's trials to the optimum."""
    settings = _settings(config)
    tuner_store, bench_store = open_stores(settings, data_dir)
    executor = make_executor(settings, model)
    tune_config = _tune_config(
        model=executor.model,
        space=build_space(space, preset, fixed),
        objective=_objective(objective, statistic, Slo()),
        concurrency=concurrency,
        requests=requests,
        warmup=warmup,
        lengths=lengths_option(lengths, input_tokens, output_tokens),
        seed=seed,
    )
    with progress_bar() as progress:
        total = 2 * feasible_points(tune_config, executor) + 1
        listener: Callable[[TuneEvent], None] = TuneProgress(progress, total, tune_config.objective)
        comparison = asyncio.run(
            compare_tpe_with_grid(
                tune_config,
                executor,
                tuner_store,
                bench_store=bench_store,
                tolerance=tolerance,
                confirm_rounds=confirm_rounds,
                listener=listener,
            )
        )
    print_comparison(comparison)
    if json_path:
        json_path.write_text(json.dumps(comparison.to_dict(), indent=2), encoding="utf-8")


def print_comparison(comparison: Comparison) -> None:
    print_summary(comparison.grid)
    print_summary(comparison.tpe)
    data = comparison.to_dict()
    table = Table("measure", "value", title="TPE vs grid (same space, same run)", title_justify="left")
    for key in ("objective", "budget", "baseline_value", "grid_optimum", "grid_best_params", "tuned_vs_baseline"):
        table.add_row(key, _cell(data[key]))
    for key in ("tpe_best", "tpe_best_params", "tpe_curve", "trials_to_tolerance", "trials_to_grid_best"):
        table.add_row(key, _cell(data[key]))
    for name, values in comparison.confirmation.items():
        table.add_row(f"re-measured {name}", _cell(values))
    table.add_row("confirmed tuned vs baseline", _cell(comparison.confirmed_gain))
    table_console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return ", ".join("-" if v is None else f"{v:.1f}" for v in value)
    return str(value)
