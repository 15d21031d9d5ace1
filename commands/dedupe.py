"""`newsradar dedupe FILE.jsonl`: duplicates and stories for a file of article records."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from commands.common import echo_err, fail
from newsradar.dates import parse_published
from newsradar.jsonl import Line, read_records


class StateKind(StrEnum):
    memory = "memory"
    es = "es"


def _read(path: Path) -> tuple[list[Line], int]:
    """Good lines in order, and how many bad ones were reported (each named by its line number)."""
    good: list[Line] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in read_records(handle):
            record = line.record
            problem = line.error
            if record is None:
                pass
            elif not isinstance(record.get("id"), (str, int)) or str(record.get("id")).strip() == "":
                problem = "missing 'id'"
            elif not any(isinstance(record.get(k), str) and record[k].strip() for k in ("title", "text")):
                problem = "needs a non-empty 'title' or 'text'"
            else:
                for key in ("url", "title", "text", "lang", "source", "lead"):
                    if record.get(key) is not None and not isinstance(record[key], str):
                        problem = f"'{key}' must be a string"
            if problem:
                echo_err(f"line {line.number}: {problem}; skipped")
                bad += 1
                continue
            good.append(line)
    return good, bad


def dedupe(
    file: Annotated[
        Path, typer.Argument(help="JSON lines: id, url, title, text, optional lang, published, source")
    ],
    state: Annotated[
        StateKind,
        typer.Option(help="memory: fresh state for this file; es: the shared state in Elasticsearch"),
    ] = StateKind.memory,
    threshold: Annotated[
        float | None,
        typer.Option(help="Near-duplicate: estimated Jaccard of word-pair shingles (default 0.5)"),
    ] = None,
    window_hours: Annotated[
        float | None, typer.Option(help="Same story: published at most this many hours apart (default 96)")
    ] = None,
    rank: Annotated[
        int | None, typer.Option(help="Same story: among this many nearest stories (default 3)")
    ] = None,
) -> None:
    """Print one JSON line per article, in input order: id, story_id, duplicate_of (null or the id it
    duplicates), plus lang and how it was matched (match: new, url, hash, near, story)."""
    from dataclasses import replace
    from datetime import timedelta

    import numpy as np

    from enrich.dedupe import ArticleInput, MemoryState, StoryAssigner, StoryState, fill_vectors, params_from
    from enrich.embed import get_embedder
    from enrich.language import detect_language, normalise_lang
    from newsradar.settings import get_settings, redact_url

    if not file.is_file():
        raise fail(f"{file}: no such file")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise fail("--threshold must be in (0, 1]")
    settings = get_settings()
    params = params_from(settings, threshold)
    if window_hours is not None:
        params = replace(params, window=timedelta(hours=window_hours))
    if rank is not None:
        params = replace(params, rank=max(1, rank))
    lines, bad = _read(file)
    items = []
    for line in lines:
        rec = line.record or {}
        title, text = rec.get("title") or "", rec.get("text") or ""
        lang = normalise_lang(rec.get("lang")) or (
            rec.get("lang") if rec.get("lang") == "other" else detect_language(title, text, rec.get("lang"))
        )
        vector = None
        if isinstance(rec.get("embedding"), list):
            vector = np.asarray(rec["embedding"], dtype=np.float32)
        items.append(
            ArticleInput(
                id=str(rec["id"]),
                title=title,
                text=text,
                lead=rec.get("lead") or "",
                url=rec.get("url"),
                lang=str(lang),
                source=rec.get("source"),
                published=parse_published(rec.get("published"), lang=str(lang)),
                vector=vector,
                embedding_model=rec.get("embedding_model") if vector is not None else None,
            )
        )
    if items:
        embedder = get_embedder(settings.embedding_backend, settings.embedding_threads)
        fill_vectors(items, embedder.passages, embedder.name)
    store: StoryState
    if state is StateKind.es:
        from index.client import get_client
        from index.stories import EsState

        try:
            store = EsState(get_client(settings), settings, dims=len(items[0].vector) if items else 384)  # type: ignore[arg-type]
        except Exception as error:
            raise fail(f"Elasticsearch state at {redact_url(settings.es_url)} unusable: {error}") from error
    else:
        store = MemoryState()
    records = StoryAssigner(store, params).assign_batch(items)
    for item, record in zip(items, records, strict=True):
        typer.echo(
            json.dumps(
                {
                    "id": item.id,
                    "story_id": record.story_id,
                    "duplicate_of": record.duplicate_of,
                    "lang": item.lang,
                    "match": record.match,
                },
                ensure_ascii=False,
            )
        )
    if bad:
        echo_err(f"{bad} bad line(s) skipped; {len(items)} article(s) processed")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("dedupe")(dedupe)
