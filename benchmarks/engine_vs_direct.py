"""Direct llama-server vs llmhost in front of the same engine, measured in one run (see benchmarks/README.md).

(A) ``direct``: a llama-server this script starts with exactly llmhost's argv (``build_argv``).
(B) ``llmhost``: ``llmhost serve`` with a temporary config; it starts its own llama-server on first use.
Only one engine runs at a time; repeats are interleaved A, B, A, B. Warm-up requests are not measured.

    .venv/bin/python benchmarks/engine_vs_direct.py --levels 1,4,8 --requests 16 --repeats 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from _common import (
    Child,
    CpuMeter,
    RequestResult,
    StartError,
    clean_env,
    closed_loop,
    distribution_ms,
    flatten,
    free_port,
    kill_if_running,
    median,
    stream_chat,
    wait_healthy,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmhost import __version__
from llmhost.config import ConfigError, ModelProfile, load_settings
from llmhost.engines.llamaserver import build_argv
from llmhost.installer import InstallError, default_model_path, first_version_line, resolve_engine
from llmhost.models.names import display_name_for_file

TARGETS = ("direct", "llmhost")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RATIO_TARGET = 0.95
NOISY_OTHER_PCT = 10.0  # other processes used more than this share of the machine during a level
SYSTEM = "Request {nonce}. You are a careful assistant who answers in plain prose."
PROMPT = (
    "Summarize the following passage in a few sentences, then list three questions a curious reader might "
    "ask about it. Passage: The lighthouse keeper's log for the winter of 1893 records forty-one days of fog, "
    "eleven gales and a single shipwreck, a coal schooner that ran aground on the northern reef after "
    "mistaking the harbor lights for the channel beacon. The crew of six were rescued by the keeper and his "
    "daughter, who rowed out twice in a borrowed dory while the tide was turning. The log notes the weather "
    "at every watch and the oil burned each night."
)


class SetupError(RuntimeError):
    pass


@dataclass(slots=True)
class Plan:
    binary: Path
    model: Path
    model_name: str
    profile: ModelProfile
    levels: list[int]
    requests: int
    repeats: int
    max_tokens: int
    warmup: int
    startup_timeout: float
    workdir: Path

    def requests_at(self, level: int) -> int:
        return max(self.requests, 2 * level)

    def total_requests(self) -> int:
        return self.repeats * len(TARGETS) * sum(self.requests_at(level) for level in self.levels)


@dataclass(slots=True)
class Session:
    """One running target: where to send requests and which processes to account CPU to."""

    target: str
    base_url: str
    client: httpx.AsyncClient
    engine: psutil.Process | None = None
    llmhost: psutil.Process | None = None
    engine_argv: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    nonce: int = 0

    def body(self, plan: Plan) -> dict[str, Any]:
        """The fixed workload; a unique first line per request so no slot reuses a cached prompt. The
        nonce sequence is the same for every session, so both targets get identical prompts."""
        self.nonce += 1
        return {
            "model": plan.model_name,
            "messages": [
                {"role": "system", "content": SYSTEM.format(nonce=f"{self.nonce:05d}")},
                {"role": "user", "content": PROMPT},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": plan.max_tokens,
            "ignore_eos": True,
            "temperature": 0,
        }

    async def send(self, plan: Plan) -> RequestResult:
        return await stream_chat(self.client, f"{self.base_url}/v1/chat/completions", self.body(plan))

    def cpu_meter(self) -> CpuMeter:
        procs = {"client": psutil.Process()}
        if self.engine is not None:
            procs["engine"] = self.engine
        if self.llmhost is not None:
            procs["llmhost"] = self.llmhost
        return CpuMeter(procs)


class Reporter:
    """The rich progress bar plus one line per finished level."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=total)

    def phase(self, text: str) -> None:
        self.progress.update(self.task, description=text)

    def advance(self, _result: RequestResult) -> None:
        self.progress.advance(self.task)

    def level_done(self, repeat: int, target: str, level: dict[str, Any]) -> None:
        cpu = level["cpu"]
        llmhost_cpu = f", llmhost {cpu['llmhost_ms_per_req']:.0f} ms CPU/req" if "llmhost_ms_per_req" in cpu else ""
        self.progress.console.print(
            f"r{repeat} {target:>7} c={level['concurrency']}: {level['output_tok_s']:.1f} tok/s, "
            f"TTFT p50 {fmt(level['ttft_ms']['p50'])} ms, errors {level['errors']}{llmhost_cpu}, "
            f"other CPU {cpu['other_pct']:.0f}%",
            highlight=False,
        )


# --- sessions --------------------------------------------------------------------------------------------------


def http_client(plan: Plan) -> httpx.AsyncClient:
    connections = max(plan.levels) + 2
    return httpx.AsyncClient(
        timeout=httpx.Timeout(600.0, connect=10.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        trust_env=False,
    )


@contextlib.asynccontextmanager
async def direct_session(plan: Plan, client: httpx.AsyncClient) -> AsyncIterator[Session]:
    port = free_port()
    argv = build_argv(plan.binary, plan.model, plan.profile, port)
    child = Child(argv, plan.workdir / f"direct-{port}.log")
    session = Session("direct", f"http://127.0.0.1:{port}", client, engine=child.ps, engine_argv=argv)
    try:
        await wait_healthy(client, session.base_url, child, plan.startup_timeout)
        yield session
    finally:
        child.stop()


def write_llmhost_config(plan: Plan, port: int) -> Path:
    config = {
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(plan.workdir / "llmhost-data"),
        "cache_dir": str(plan.workdir / "llmhost-cache"),
        "model_dirs": [str(plan.model.parent)],
        "scan_ollama": False,
        "scan_hf_cache": False,
        "default_model": plan.model_name,
        "engine": {"llama_server": str(plan.binary), "startup_timeout": plan.startup_timeout},
        "models": {plan.model_name: plan.profile.model_dump(mode="json", exclude_defaults=True)},
    }
    path = plan.workdir / f"llmhost-{port}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def llmhost_session(plan: Plan, client: httpx.AsyncClient) -> AsyncIterator[Session]:
    port = free_port()
    config = write_llmhost_config(plan, port)
    argv = [sys.executable, "-m", "llmhost", "serve", "--config", str(config), "--port", str(port)]
    child = Child(argv, plan.workdir / f"llmhost-{port}.log", env=clean_env("LLMHOST_"))
    session = Session("llmhost", f"http://127.0.0.1:{port}", client, llmhost=child.ps)
    try:
        await wait_healthy(client, session.base_url, child, plan.startup_timeout)
        yield session
    finally:
        code = child.stop()
        if code not in (0, -signal.SIGTERM):
            session.warnings.append(f"llmhost exited with {code} after SIGTERM")
        if kill_if_running(session.engine):
            session.warnings.append("llmhost left its llama-server running after it stopped; killed it")


def attach_engine(session: Session) -> None:
    """Find the llama-server llmhost started (after the first request) and read its argv."""
    assert session.llmhost is not None
    engines = [proc for proc in session.llmhost.children(recursive=True) if "llama-server" in proc.name()]
    if len(engines) != 1:
        raise StartError(f"expected one llama-server child of llmhost, found {len(engines)}")
    session.engine = engines[0]
    session.engine_argv = session.engine.cmdline()


def argv_mismatch(plan: Plan, argv: list[str]) -> str | None:
    """Compare an engine's argv with what build_argv gives for the same profile on the same port."""
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 0
    expected = build_argv(plan.binary, plan.model, plan.profile, port)
    if argv == expected:
        return None
    return f"engine argv differs from direct: got {argv}, expected {expected}"


# --- measuring -------------------------------------------------------------------------------------------------


async def warm_up(plan: Plan, session: Session) -> None:
    for _ in range(plan.warmup):
        result = await session.send(plan)
        if not result.ok:
            raise StartError(f"{session.target}: warm-up request failed: {result.error}")


async def run_level(plan: Plan, session: Session, level: int, reporter: Reporter) -> dict[str, Any]:
    meter = session.cpu_meter()
    requests = plan.requests_at(level)
    before = meter.snapshot()
    results, wall = await closed_loop(level, requests, lambda: session.send(plan), reporter.advance)
    cpu = CpuMeter.delta(before, meter.snapshot(), requests)
    return summarize(level, results, wall, cpu, plan.max_tokens)


def summarize(
    level: int, results: list[RequestResult], wall: float, cpu: dict[str, float], max_tokens: int
) -> dict[str, Any]:
    ok = [result for result in results if result.ok]
    tokens = sum(result.tokens for result in ok)
    prompts = [result.prompt_tokens for result in ok if result.prompt_tokens is not None]
    return {
        "concurrency": level,
        "requests": len(results),
        "errors": len(results) - len(ok),
        "error_samples": [result.error for result in results if result.error][:3],
        "usage_missing": sum(result.completion_tokens is None for result in ok),
        "short_outputs": sum(result.tokens != max_tokens for result in ok),
        "wall_s": wall,
        "output_tokens": tokens,
        "output_tok_s": tokens / wall if wall else 0.0,
        "req_s": len(ok) / wall if wall else 0.0,
        "observed_concurrency": sum(result.e2e for result in results) / wall if wall else 0.0,
        "prompt_tokens_mean": statistics.fmean(prompts) if prompts else None,
        "ttft_ms": distribution_ms([result.ttft for result in ok if result.ttft is not None]),
        "tpot_ms": distribution_ms([result.tpot for result in ok if result.tpot is not None]),
        "e2e_ms": distribution_ms([result.e2e for result in ok]),
        "cpu": cpu,
        "raw": [asdict(result) for result in results],
    }


async def run_target(plan: Plan, target: str, repeat: int, reporter: Reporter) -> dict[str, Any]:
    opener = direct_session if target == "direct" else llmhost_session
    levels: list[dict[str, Any]] = []
    async with http_client(plan) as client, opener(plan, client) as session:
        reporter.phase(f"r{repeat} {target}: starting, warm-up")
        await warm_up(plan, session)
        if session.engine is None:
            attach_engine(session)
        mismatch = argv_mismatch(plan, session.engine_argv)
        for level in plan.levels:
            reporter.phase(f"r{repeat} {target} c={level}")
            levels.append(await run_level(plan, session, level, reporter))
            reporter.level_done(repeat, target, levels[-1])
    return {
        "repeat": repeat,
        "target": target,
        "engine_argv": session.engine_argv,
        "argv_mismatch": mismatch,
        "warnings": session.warnings,
        "levels": levels,
    }


async def run_all(plan: Plan, runs: list[dict[str, Any]], console: Console) -> None:
    """A, B, A, B ...: one engine at a time. ``runs`` fills as targets finish (kept on Ctrl-C)."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        reporter = Reporter(progress, plan.total_requests())
        for repeat in range(1, plan.repeats + 1):
            for target in TARGETS:
                runs.append(await run_target(plan, target, repeat, reporter))


# --- aggregation and output ------------------------------------------------------------------------------------


def level_runs(runs: list[dict[str, Any]], target: str, level: int) -> dict[int, dict[str, Any]]:
    """Per repeat, the given target's result at one concurrency level."""
    found: dict[int, dict[str, Any]] = {}
    for run in runs:
        if run["target"] == target:
            for result in run["levels"]:
                if result["concurrency"] == level:
                    found[run["repeat"]] = result
    return found


def median_of(results: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Median over repeats of every numeric metric (percentiles are never averaged across levels)."""
    flats = [flatten({key: value for key, value in result.items() if key != "raw"}) for result in results]
    keys = sorted({key for flat in flats for key in flat})
    return {key: median(flat.get(key) for flat in flats) for key in keys}


def paired(
    direct: dict[int, dict[str, Any]],
    llmhost: dict[int, dict[str, Any]],
    value: Callable[[dict[str, Any], dict[str, Any]], float | None],
) -> list[float]:
    """``value`` of each repeat's (direct, llmhost) pair: adjacent in time, so drift cancels best."""
    pairs = (value(direct[r], llmhost[r]) for r in sorted(direct.keys() & llmhost.keys()))
    return [v for v in pairs if v is not None]


def tok_s_ratio(direct: dict[str, Any], llmhost: dict[str, Any]) -> float | None:
    return llmhost["output_tok_s"] / direct["output_tok_s"] if direct["output_tok_s"] else None


def added_ttft(direct: dict[str, Any], llmhost: dict[str, Any]) -> float | None:
    a, b = direct["ttft_ms"]["p50"], llmhost["ttft_ms"]["p50"]
    return None if a is None or b is None else b - a


def total_errors(results: dict[int, dict[str, Any]]) -> int:
    return sum(result["errors"] for result in results.values())


def aggregate(runs: list[dict[str, Any]], levels: list[int]) -> list[dict[str, Any]]:
    summary = []
    for level in levels:
        direct, llmhost = (level_runs(runs, target, level) for target in TARGETS)
        if not direct or not llmhost:
            continue
        ratios = paired(direct, llmhost, tok_s_ratio)
        added = paired(direct, llmhost, added_ttft)
        summary.append(
            {
                "concurrency": level,
                "direct": median_of(list(direct.values())),
                "llmhost": median_of(list(llmhost.values())),
                "ratio": {"median": median(ratios), "per_repeat": ratios},
                "added_ttft_p50_ms": {"median": median(added), "per_repeat": added},
                "errors": {"direct": total_errors(direct), "llmhost": total_errors(llmhost)},
            }
        )
    return summary


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def spread(values: list[float], digits: int) -> str:
    return "" if len(values) < 2 else f" ({fmt(min(values), digits)}..{fmt(max(values), digits)})"


def other_cpu(stats: dict[str, float | None]) -> str:
    pct = stats.get("cpu.other_pct")
    text = fmt(pct) + "%"
    return f"[yellow]{text}![/]" if pct is not None and pct > NOISY_OTHER_PCT else text


def summary_table(summary: list[dict[str, Any]]) -> Table:
    table = Table(title=f"llmhost vs direct llama-server (medians over repeats; ratio target ≥ {RATIO_TARGET})")
    for column in (
        "c",
        "direct tok/s",
        "llmhost tok/s",
        "ratio",
        "TTFT p50 direct ms",
        "TTFT p50 llmhost ms",
        "added TTFT ms",
        "llmhost CPU ms/req",
        "other CPU d / l",
        "errors d / l",
    ):
        table.add_column(column, justify="right")
    for row in summary:
        direct, llmhost, ratio = row["direct"], row["llmhost"], row["ratio"]
        colour = "green" if (ratio["median"] or 0) >= RATIO_TARGET else "red"
        table.add_row(
            str(row["concurrency"]),
            fmt(direct.get("output_tok_s"), 1),
            fmt(llmhost.get("output_tok_s"), 1),
            f"[{colour}]{fmt(ratio['median'], 3)}[/]{spread(ratio['per_repeat'], 3)}",
            fmt(direct.get("ttft_ms.p50")),
            fmt(llmhost.get("ttft_ms.p50")),
            fmt(row["added_ttft_p50_ms"]["median"], 1) + spread(row["added_ttft_p50_ms"]["per_repeat"], 1),
            fmt(llmhost.get("cpu.llmhost_ms_per_req"), 1),
            f"{other_cpu(direct)} / {other_cpu(llmhost)}",
            f"{row['errors']['direct']} / {row['errors']['llmhost']}",
        )
    return table


def triple(stats: dict[str, float | None], metric: str, digits: int = 0) -> str:
    return " / ".join(fmt(stats.get(f"{metric}.p{q}"), digits) for q in (50, 90, 99))


def detail_table(summary: list[dict[str, Any]]) -> Table:
    table = Table(title="details (ms; medians over repeats of per-repeat percentiles)")
    columns = (
        "c",
        "target",
        "tok/s",
        "req/s",
        "TTFT p50/p90/p99",
        "TPOT p50/p90/p99",
        "E2E p50/p90/p99",
        "engine CPU ms/req",
        "client CPU ms/req",
        "other CPU",
        "no usage",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in summary:
        for target in TARGETS:
            stats = row[target]
            table.add_row(
                str(row["concurrency"]), target, fmt(stats.get("output_tok_s"), 1), fmt(stats.get("req_s"), 2),
                triple(stats, "ttft_ms"), triple(stats, "tpot_ms", 1), triple(stats, "e2e_ms"),
                fmt(stats.get("cpu.engine_ms_per_req")), fmt(stats.get("cpu.client_ms_per_req"), 1),
                other_cpu(stats), fmt(stats.get("usage_missing")),
            )  # fmt: skip
    return table


def problems(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(failures, warnings): failed requests and an unfair argv fail the run; the rest is flagged."""
    failures: list[str] = []
    warnings: list[str] = []
    for run in runs:
        where = f"repeat {run['repeat']} {run['target']}"
        failures += [f"{where}: {run['argv_mismatch']}"] if run["argv_mismatch"] else []
        warnings += [f"{where}: {warning}" for warning in run["warnings"]]
        for level in run["levels"]:
            at = f"{where} c={level['concurrency']}"
            if level["errors"]:
                failures.append(f"{at}: {level['errors']} failed requests, e.g. {level['error_samples'][0]}")
            if level["usage_missing"]:
                warnings.append(f"{at}: {level['usage_missing']} responses without usage (tokens estimated)")
            if level["short_outputs"]:
                warnings.append(f"{at}: {level['short_outputs']} responses not exactly max_tokens long")
    return failures, warnings


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def write_results(plan: Plan, args: argparse.Namespace, runs: list[dict[str, Any]], extra: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"engine_vs_direct-{stamp}.json"
    meta = {
        "timestamp": stamp,
        "llmhost_version": __version__,
        "engine": str(plan.binary),
        "engine_version": first_version_line(plan.binary),
        "model": str(plan.model),
        "model_name": plan.model_name,
        "profile": plan.profile.model_dump(mode="json"),
        "cpu_count": psutil.cpu_count(),
        "cpu_model": cpu_model(),
        "args": vars(args),
        "prompt": {"system": SYSTEM, "user": PROMPT},
    }
    document = {"meta": meta, **extra, "summary": aggregate(runs, plan.levels), "runs": runs}
    path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    return path


# --- entry point -----------------------------------------------------------------------------------------------


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from exc
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("levels must be positive integers")
    return levels


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=parse_levels, default=[1, 4, 8], help="closed-loop concurrency levels")
    parser.add_argument("--requests", type=int, default=16, help="requests per level (at least 2x the level)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved A/B repeats")
    parser.add_argument("--max-tokens", type=int, default=64, help="output tokens per request (ignore_eos)")
    parser.add_argument("--parallel", type=int, default=8, help="engine slots (-np); must be >= the max level")
    parser.add_argument("--ctx", type=int, default=2048, help="context per slot")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests after each engine start")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    if args.parallel < max(args.levels):
        parser.error(f"--parallel {args.parallel} < max level {max(args.levels)}: concurrency would queue")
    if min(args.requests, args.repeats, args.max_tokens, args.warmup + 1) < 1:
        parser.error("--requests, --repeats and --max-tokens must be >= 1, --warmup >= 0")
    return args


def make_plan(args: argparse.Namespace, workdir: Path) -> Plan:
    try:
        settings = load_settings()
        binary = resolve_engine(settings)
        model = default_model_path(settings)
    except (ConfigError, InstallError) as exc:
        raise SetupError(str(exc)) from exc
    if binary is None:
        raise SetupError("no llama-server found: run `llmhost setup` (or `make setup`) first")
    if not model.is_file():
        raise SetupError(f"default model {model} is missing: run `llmhost setup` (or `make setup`) first")
    return Plan(
        binary=binary,
        model=model,
        model_name=display_name_for_file(model),
        profile=ModelProfile(ctx=args.ctx, parallel=args.parallel),
        levels=args.levels,
        requests=args.requests,
        repeats=args.repeats,
        max_tokens=args.max_tokens,
        warmup=args.warmup,
        startup_timeout=args.startup_timeout,
        workdir=workdir,
    )


def measure(plan: Plan, console: Console) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run everything; a start failure or Ctrl-C still returns what was measured so far."""
    runs: list[dict[str, Any]] = []
    status: dict[str, Any] = {"interrupted": False, "failure": None}
    try:
        asyncio.run(run_all(plan, runs, console))
    except (KeyboardInterrupt, asyncio.CancelledError):
        status["interrupted"] = True
    except (StartError, OSError) as exc:
        status["failure"] = str(exc)
    return runs, status


def report(console: Console, plan: Plan, runs: list[dict[str, Any]], status: dict[str, Any]) -> list[str]:
    summary = aggregate(runs, plan.levels)
    if summary:
        console.print(summary_table(summary))
        console.print(detail_table(summary))
    console.print(
        "[dim]Real-engine ratios on a 2-core box vary 9-19% run to run; a gateway cost under ~10% shows in "
        "the CPU ms/request and added TTFT columns, not in tok/s. Levels with other CPU > "
        f"{NOISY_OTHER_PCT:.0f}% are marked !.[/]"
    )
    failures, warnings = problems(runs)
    if status["failure"]:
        failures.insert(0, f"run aborted: {status['failure']}")
    if status["interrupted"]:
        failures.insert(0, "interrupted: results are partial")
    for warning in warnings:
        console.print(f"[yellow]warning: {warning}[/]", highlight=False)
    for failure in failures:
        console.print(f"[red]{failure}[/]", highlight=False)
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    with tempfile.TemporaryDirectory(prefix="llmhost-bench-") as tmp:
        try:
            plan = make_plan(args, Path(tmp))
        except SetupError as exc:
            console.print(f"[red]{exc}[/]")
            return 2
        console.print(
            f"engine {plan.binary}\nmodel  {plan.model} ({plan.model_name}), profile "
            f"{plan.profile.model_dump(exclude_defaults=True)}",
            highlight=False,
        )
        runs, status = measure(plan, console)
    failures = report(console, plan, runs, status)
    if runs:
        console.print(f"results: {write_results(plan, args, runs, status)}")
    if status["interrupted"]:
        return 130
    return 1 if failures or not runs else 0


if __name__ == "__main__":
    sys.exit(main())
