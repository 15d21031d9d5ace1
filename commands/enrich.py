"""`newsradar classify` and `newsradar models ...`: enrichment from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from commands.common import echo_err, fail
from newsradar.jsonl import dumps, read_records
from newsradar.settings import get_settings

models_app = typer.Typer(help="Translation models (Argos Translate packages).", no_args_is_help=True)
DEFAULT_PAIRS = ("de-en", "zh-en")


CHUNK = 128  # records embedded together: one model call per chunk, output streams chunk by chunk
CLASSIFY_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
Prepared = tuple[dict[str, Any], str, str, str | None]


def prepare_record(record: dict[str, Any]) -> Prepared:
    """Validate one input object: (record, clean title, clean lead, language hint); ValueError says
    what is wrong with it."""
    from enrich.events_model import clean_input

    title = record.get("title")
    body = record.get("text") or record.get("snippet") or ""
    if title is not None and not isinstance(title, str):
        raise ValueError(f"'title' must be a string, got {type(title).__name__}")
    if not isinstance(body, str):
        raise ValueError(f"'text'/'snippet' must be a string, got {type(body).__name__}")
    clean_title, lead = clean_input(title or "", body)
    given = record.get("lang")
    return record, clean_title, lead, given if isinstance(given, str) else None


def classify_batch(items: list[Prepared]) -> list[dict[str, Any]]:
    """Every input field kept, plus ``lang`` (detected; a differing input value stays as
    ``lang_hint``), ``ai_related``, ``event_type``, ``event_types``, ``event_scores`` and ``entities``.
    Each text is embedded once, with the model's own e5 family."""
    import numpy as np

    from enrich.embed import get_embedder, passage_text
    from enrich.events_model import MODEL_EMBEDDER, judge
    from enrich.language import detect_language

    if not items:
        return []
    titles = [title for _, title, _, _ in items]
    leads = [lead for _, _, lead, _ in items]
    embedder = get_embedder(MODEL_EMBEDDER, get_settings().embedding_threads)
    texts = [passage_text(title, lead) for title, lead in zip(titles, leads, strict=True)]
    vectors = np.asarray(embedder.passages(texts))
    out = []
    for (record, title, lead, hint), judgment in zip(items, judge(titles, leads, vectors), strict=True):
        lang = detect_language(title, lead, hint)
        row = dict(record)
        if hint is not None and hint != lang:
            row.setdefault("lang_hint", hint)
        row["lang"] = lang
        row.update(judgment.prediction.as_dict())
        row["entities"] = judgment.entities
        out.append(row)
    return out


def classify_stream(stream: IO[str], out: IO[str], name: str) -> int:
    """Classify every line, in chunks; a bad line is reported on stderr and skipped. Returns the number
    of bad lines."""
    bad = 0
    chunk: list[Prepared] = []

    def flush() -> None:
        for row in classify_batch(chunk):
            out.write(dumps(row))
        out.flush()
        chunk.clear()

    for line in read_records(stream):
        try:
            if line.record is None:
                raise ValueError(line.error)
            chunk.append(prepare_record(line.record))
        except ValueError as error:
            echo_err(f"error: {name}:{line.number}: {error}")
            bad += 1
            continue
        if len(chunk) >= CHUNK:
            flush()
    flush()
    return bad


def classify_command(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(
            help="JSON lines (title, optional text/snippet, lang); stdin if omitted. "
            "`classify train [--data PATH]` rebuilds the model instead."
        ),
    ] = None,
) -> None:
    """Print each input object with lang, ai_related, event_type, event_types, event_scores and entities
    added (all input fields kept). `newsradar classify train [--data PATH]` rebuilds the model from
    labelled headlines and prints its cross-validated figures."""
    if file is not None and str(file) == "train" and not Path("train").is_file():
        from enrich.events_train import main as train_main

        raise typer.Exit(train_main(list(ctx.args)))
    if ctx.args:
        raise fail(f"unexpected arguments: {' '.join(ctx.args)}")
    try:
        if file is not None and str(file) != "-":
            if not file.is_file():
                raise fail(f"{file} does not exist")
            with file.open(encoding="utf-8", errors="replace") as stream:
                bad = classify_stream(stream, sys.stdout, str(file))
        else:
            bad = classify_stream(sys.stdin, sys.stdout, "<stdin>")
    except FileNotFoundError as error:  # the model file is missing
        raise fail(str(error)) from error
    if bad:
        echo_err(f"{bad} line(s) could not be classified (listed above)")
        raise typer.Exit(1)


@models_app.command("install")
def models_install(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Language pairs from the Argos package index (online), e.g. de-en zh-en"),
    ] = None,
    files: Annotated[
        list[Path] | None,
        typer.Option("--file", "-f", help="A local .argosmodel file (the offline way); repeatable"),
    ] = None,
) -> None:
    """Install Argos Translate packages into the state directory (NEWSRADAR_ARGOS_PACKAGES_DIR).

    Without NAME or --file: de-en and zh-en from the index.
    """
    from enrich.translate import argos_packages_dir

    try:
        from enrich import translate_argos
    except ImportError as error:
        raise fail(f"the argos backend is not installed ({error}); pip install argostranslate") from error
    target = argos_packages_dir(get_settings())
    installed: list[translate_argos.PackageInfo] = []
    try:
        for path in files or []:
            installed.append(translate_argos.install_file(path, target))
        wanted = list(names or ([] if files else DEFAULT_PAIRS))
        if wanted:
            installed.extend(translate_argos.install_from_index(wanted, target))
    except translate_argos.ArgosPackageError as error:
        raise fail(str(error)) from error
    for info in installed:
        typer.echo(
            f"installed {info.from_code}→{info.to_code} ({info.name}, version {info.version}) in {info.path}"
        )


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per package")] = False,
) -> None:
    """Installed translation packages, and the configured translation and embedding backends."""
    from enrich.translate import argos_packages_dir

    settings = get_settings()
    target = argos_packages_dir(settings)
    try:
        from enrich import translate_argos

        packages = translate_argos.describe(target)
    except ImportError:
        packages = []
        echo_err("argostranslate is not installed: no Argos packages can be used")
    for info in packages:
        if as_json:
            row = {
                "kind": "translation",
                "backend": "argos",
                "name": info.name,
                "from": info.from_code,
                "to": info.to_code,
                "version": info.version,
                "path": str(info.path),
            }
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            typer.echo(f"{info.from_code}→{info.to_code}\t{info.version or '-'}\t{info.name}\t{info.path}")
    if not packages:
        echo_err(
            f"no Argos packages in {target}; install one: newsradar models install --file FILE.argosmodel"
        )
    embedding = settings.embedding_backend
    if embedding == "sentence-transformers":
        embedding += f" ({settings.embedding_model})"
    echo_err(f"translation backend: {settings.translation_backend}; embedding backend: {embedding}")


def register(app: typer.Typer) -> None:
    app.command("classify", context_settings=CLASSIFY_CONTEXT)(classify_command)
    app.add_typer(models_app, name="models")
