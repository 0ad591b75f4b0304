"""``llmhost tune``."""

from __future__ import annotations

import typer

tune_app = typer.Typer(help="Search the best engine parameters for a model.", no_args_is_help=True)
