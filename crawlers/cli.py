"""`newsradar replay` (and the crawl commands): collecting coverage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsradar.clitools import echo_err, fail
from newsradar.settings import get_settings


def replay(
    directory: Annotated[
        Path | None, typer.Argument(help="Directory of recorded pages; default: the sample site")
    ] = None,
    host: str = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port; default NEWSRADAR_REPLAY_PORT")] = None,
) -> None:
    """Serve recorded pages and feeds (with robots.txt) on loopback, in place of the live sites."""
    from crawlers.replay import SAMPLE_SITE, serve_forever

    root = directory or SAMPLE_SITE
    if not root.is_dir():
        raise fail(f"{root} is not a directory")
    chosen = port if port is not None else get_settings().replay_port
    echo_err(f"replaying {root} at http://{host}:{chosen}/ (Ctrl-C stops)")
    serve_forever(root, host, chosen)


def register(app: typer.Typer) -> None:
    app.command()(replay)
