"""``llmhost advise``: the advisor's report in the terminal."""

from __future__ import annotations

import typer


def advise_command() -> None:
    """How to use this hardware better, with reasons and numbers."""
    raise typer.Exit(1)
