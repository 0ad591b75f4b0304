"""``llmhost bench``."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Benchmark an endpoint or one of our models.", no_args_is_help=True)
