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


def classify_record(record: dict[str, Any]) -> dict[str, Any]:
    """The input object with ``lang``, ``event_types``, ``entities`` (and confidences, evidence) added.

    An input ``lang`` is a hint: the output ``lang`` is the detected one (de, en, zh, other); when they
    differ, the input value is kept as ``lang_hint`` so nothing given is lost.
    """
    from enrich.classify import classify
    from enrich.entities import entity_names
    from enrich.language import detect_language

    title = record.get("title")
    body = record.get("text") or record.get("snippet") or ""
    if title is not None and not isinstance(title, str):
        raise ValueError(f"'title' must be a string, got {type(title).__name__}")
    if not isinstance(body, str):
        raise ValueError(f"'text'/'snippet' must be a string, got {type(body).__name__}")
    title = title or ""
    if not title.strip() and not body.strip():
        raise ValueError("no 'title', 'text' or 'snippet' to classify")
    given = record.get("lang")
    hint = given if isinstance(given, str) else None
    lang = detect_language(title, body, hint)
    labels = classify(title, body, lang)
    out = dict(record)
    if given is not None and given != lang:
        out.setdefault("lang_hint", given)
    out["lang"] = lang
    out["event_types"] = [label.type for label in labels]
    out["event_confidence"] = {label.type: label.confidence for label in labels}
    out["event_evidence"] = {label.type: list(label.evidence) for label in labels}
    out["entities"] = entity_names(title, body, lang)
    return out


def classify_stream(stream: IO[str], out: IO[str], name: str) -> int:
    """Classify every line; a bad line is reported on stderr and skipped. Returns the number of bad lines."""
    bad = 0
    for line in read_records(stream):
        try:
            if line.record is None:
                raise ValueError(line.error)
            result = classify_record(line.record)
        except ValueError as error:
            echo_err(f"error: {name}:{line.number}: {error}")
            bad += 1
            continue
        out.write(dumps(result))
        out.flush()
    return bad


def classify_command(
    file: Annotated[
        Path | None, typer.Argument(help="JSON lines (title, optional text/snippet, lang); stdin if omitted")
    ] = None,
) -> None:
    """Print each input object with lang, event_types and entities added (all input fields kept)."""
    if file is not None and str(file) != "-":
        if not file.is_file():
            raise fail(f"{file} does not exist")
        with file.open(encoding="utf-8", errors="replace") as stream:
            bad = classify_stream(stream, sys.stdout, str(file))
    else:
        bad = classify_stream(sys.stdin, sys.stdout, "<stdin>")
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
    app.command("classify")(classify_command)
    app.add_typer(models_app, name="models")
