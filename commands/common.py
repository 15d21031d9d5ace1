"""Small helpers shared by every area's CLI module."""

from __future__ import annotations

import typer


def echo_err(message: str) -> None:
    """Progress and diagnostics go to stderr, so stdout stays machine-readable (JSON lines)."""
    typer.echo(message, err=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)
