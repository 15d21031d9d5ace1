"""`newsradar dedupe FILE.jsonl`: duplicates and stories for a file of article records;
`newsradar dedupe train`: rebuild the same-story model and print its cross-validated figures."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands.common import echo_err, fail
from newsradar.dates import parse_published
from newsradar.jsonl import read_records

if TYPE_CHECKING:
    from newsradar.article import Article
    from newsradar.settings import Settings

ES_BATCH = 500  # articles per story-state round trip with --state es


class StateKind(StrEnum):
    memory = "memory"
    es = "es"


def _articles(path: Path) -> tuple[list[Article], int]:
    """Good lines as articles, in order, and how many bad ones were reported (each by line number).
    A record needs an ``id`` and a non-empty ``title`` or ``text``; everything else is optional: no
    date compares the article without the time window, and a huge body is clipped where it is
    fingerprinted (``enrich.dedupe.MAX_TEXT_CHARS``)."""
    from pydantic import ValidationError

    from enrich.language import normalise_lang
    from newsradar.article import Article

    good: list[Article] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in read_records(handle):
            rec = line.record
            problem = line.error
            if rec is None:
                pass
            elif not isinstance(rec.get("id"), (str, int)) or str(rec.get("id")).strip() == "":
                problem = "missing 'id'"
            elif not any(isinstance(rec.get(k), str) and rec[k].strip() for k in ("title", "text")):
                problem = "needs a non-empty 'title' or 'text'"
            else:
                for key in ("url", "title", "text", "lang", "source", "lead"):
                    if rec.get(key) is not None and not isinstance(rec[key], str):
                        problem = f"'{key}' must be a string"
            if problem or rec is None:
                echo_err(f"line {line.number}: {problem}; skipped")
                bad += 1
                continue
            given = rec.get("lang")
            lang = normalise_lang(given) or ("other" if given == "other" else None)
            published = parse_published(rec.get("published"), lang=lang)
            if published is None and rec.get("published") not in (None, ""):
                echo_err(
                    f"line {line.number}: 'published' {str(rec['published'])[:40]!r} is not a date; "
                    "compared without a time"
                )
            embedding = rec.get("embedding")
            usable = isinstance(embedding, list) and all(isinstance(x, int | float) for x in embedding)
            try:
                good.append(
                    Article(
                        id=str(rec["id"]),
                        url=rec.get("url") or "",
                        canonical_url=rec.get("url") or "",
                        source=rec.get("source") or "",
                        title=rec.get("title") or "",
                        text=rec.get("text") or "",
                        lead=rec.get("lead") or "",
                        published=published,
                        lang=lang,
                        lang_hint=given,
                        embedding=[float(x) for x in embedding] if usable and embedding else None,
                        embedding_model=rec.get("embedding_model") if usable else None,
                    )
                )
            except ValidationError as error:
                first = error.errors()[0]
                echo_err(
                    f"line {line.number}: field {'.'.join(map(str, first['loc']))}: {first['msg']}; skipped"
                )
                bad += 1
    return good, bad


def _train(
    settings: Settings, data: Path | None, out: Path | None, repeats: int, folds: int, features: str | None
) -> None:
    try:
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        raise fail("training needs the train extra: pip install 'newsradar[train]'") from None
    from enrich.same_story import FEATURES, MODEL_PATH
    from enrich.same_story_train import DEFAULT_DATA, DEFAULT_FEATURES, train

    chosen = tuple(f.strip() for f in features.split(",") if f.strip()) if features else DEFAULT_FEATURES
    unknown = [f for f in chosen if f not in FEATURES]
    if unknown:
        raise fail(f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(FEATURES)}")

    data = data or DEFAULT_DATA
    if not data.is_file():
        raise fail(f"{data}: no such file (the SemEval-2022 task 8 training pairs)")
    train(
        data,
        out or MODEL_PATH,
        cache=settings.cache_dir / "dedupe",
        folds=folds,
        repeats=repeats,
        features=chosen,
        threads=settings.embedding_threads,
        log=typer.echo,
    )


def dedupe(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE.jsonl|train",
            help="JSON lines: id, title and/or text, optional url, lead, lang, published, source; "
            "or 'train' to rebuild the same-story model",
        ),
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
    data: Annotated[
        Path | None,
        typer.Option(help="train: the SemEval-2022 task 8 training CSV (default ../shared/data/...)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="train: where to write the model (default: the shipped model file)")
    ] = None,
    repeats: Annotated[int, typer.Option(help="train: cross-validation repeats (seeds)")] = 5,
    folds: Annotated[int, typer.Option(help="train: cross-validation folds")] = 5,
    features: Annotated[
        str | None, typer.Option(help="train: comma-separated features (default cos,cross,names_shared)")
    ] = None,
) -> None:
    """Print one JSON line per article, in input order: id, story_id, duplicate_of (null or the id it
    duplicates), lang, match (exact, near, story, new) and score. `newsradar dedupe train` rebuilds
    the model file and prints the cross-validated figures per language pair instead."""
    from enrich.dedupe import MemoryState, Record, StoryState
    from enrich.stages import StageContext, stage
    from newsradar.settings import get_settings, redact_url

    settings = get_settings()
    path = Path(file)
    if file == "train" and not path.is_file():
        _train(settings, data, out, repeats, folds, features)
        return
    if not path.is_file():
        raise fail(f"{file}: no such file")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise fail("--threshold must be in (0, 1]")
    updates: dict[str, float] = {}
    if threshold is not None:
        updates["dedupe_threshold"] = threshold
    if window_hours is not None:
        updates["story_window_hours"] = window_hours
    settings = settings.model_copy(update=updates)
    articles, bad = _articles(path)

    if state is StateKind.es:
        from index.client import get_client
        from index.stories import EsState

        client = get_client(settings)

        def stories(dims: int) -> StoryState:
            try:
                return EsState(client, settings, dims=dims)
            except Exception as error:
                raise fail(
                    f"Elasticsearch state at {redact_url(settings.es_url)} unusable: {error}"
                ) from error

        batch_size = ES_BATCH
    else:
        memory = MemoryState()

        def stories(dims: int) -> StoryState:
            del dims
            return memory

        batch_size = max(1, len(articles))  # one batch: every article meets every other in memory
    context = StageContext(settings, stories=stories)
    decided: dict[str, Record] = {}
    if articles:
        stage("language").run([a for a in articles if a.lang is None], context)
        stage("embed").run(articles, context)
        for start in range(0, len(articles), batch_size):
            records = stage("dedupe").run(articles[start : start + batch_size], context)
            assert isinstance(records, list)
            decided.update((record.article_id, record) for record in records)
    for article in articles:
        record = decided[article.id]
        typer.echo(
            json.dumps(
                {
                    "id": article.id,
                    "story_id": record.story_id,
                    "duplicate_of": record.duplicate_of,
                    "lang": article.lang,
                    "match": record.match,
                    "score": round(float(record.score), 4),
                },
                ensure_ascii=False,
            )
        )
    if bad:
        echo_err(f"{bad} bad line(s) skipped; {len(articles)} article(s) processed")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("dedupe")(dedupe)
