"""Translation of titles and leads into English behind one interface, with a content-hash cache.

No machine-translation model is reachable on an offline machine, so translation is pluggable:

* ``argos`` — Argos Translate packages (CTranslate2 + SentencePiece), installed with
  ``newsradar models install`` (:mod:`enrich.translate_argos`);
* ``libretranslate`` — a self-hosted LibreTranslate server over HTTP (:mod:`enrich.translate_http`);
* ``none`` (default) — no MT.

Whatever the backend, the pipeline never stops for translation: when MT is off, a language pair has no
model, or the backend fails, ``title_en`` falls back to the deterministic name glossary
(:func:`enrich.glossary.apply_glossary`), so an alert still shows "Alibaba" and "Qwen" for a Chinese
headline, and ``translation_status`` says which of these happened.

The cache is a SQLite file under the state directory, keyed by a hash of (model id, text): MT output
for a given model is deterministic, so a cache only saves work and never changes an answer. It sits on
the worker's disk rather than in Elasticsearch because lookups happen per segment in the hot loop
(a local B-tree lookup costs microseconds, a search request milliseconds), because translation must
work while the index is down (``newsradar classify``, backfills, benchmarks), and because a second
worker without the cache only repeats work, it cannot disagree.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from enrich.glossary import apply_glossary
from enrich.translator import TranslationError, Translator
from newsradar.article import Article
from newsradar.settings import Settings

log = logging.getLogger("newsradar.translate")

BACKENDS = ("argos", "libretranslate", "none")
TRANSLATED_LANGS = ("de", "zh")  # the monitored languages other than the target

# translation_status values
TRANSLATED = "translated"  # MT ran in this call for at least one segment
CACHED = "cached"  # every segment came from the cache
SKIPPED_ENGLISH = "skipped-english"  # already English: title_en = title
GLOSSARY = "glossary"  # no MT for this language (backend none, no model): names replaced by the glossary
FAILED = "failed"  # the backend failed (after retries): names replaced by the glossary; retried next run
UNAVAILABLE = "unavailable"  # no MT and no glossary for this language ("other" or unknown)
STATUSES = (TRANSLATED, CACHED, SKIPPED_ENGLISH, GLOSSARY, FAILED, UNAVAILABLE)

_FIRST_PARAGRAPH_CHARS = 600


# --- the one warning per process -------------------------------------------------------------------

_warned: set[str] = set()
_warn_lock = threading.Lock()


def warn_once(key: str, message: str) -> None:
    """Log ``translation disabled: ...`` once per process and reason, not once per article."""
    with _warn_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("translation disabled: %s", message)


def reset_warnings() -> None:
    """Forget which warnings were given (for tests of the warning itself)."""
    with _warn_lock:
        _warned.clear()


# --- cache -------------------------------------------------------------------------------------------


def cache_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()


class TranslationCache:
    """Content-hash → translation, in SQLite (WAL, so several worker processes can share one file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS translations ("
                " key TEXT PRIMARY KEY, model TEXT NOT NULL, translation TEXT NOT NULL,"
                " created REAL NOT NULL DEFAULT (unixepoch('now')))"
            )

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, translation FROM translations WHERE key IN ({marks})", chunk
                )
                found.update(rows.fetchall())
        return found

    def put_many(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """Store (key, model id, translation) rows."""
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO translations (key, model, translation) VALUES (?, ?, ?)", list(rows)
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM translations").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def cache_path(settings: Settings) -> Path:
    return settings.translation_cache or settings.state_dir / "translate" / "cache.sqlite"


def argos_packages_dir(settings: Settings) -> Path:
    return settings.argos_packages_dir or settings.state_dir / "translate" / "argos-packages"


# --- backends ----------------------------------------------------------------------------------------


def get_translator(settings: Settings) -> Translator | None:
    """The configured backend, or None for ``none``; an unknown name is a configuration error."""
    backend = settings.translation_backend.strip().lower()
    if backend not in BACKENDS:
        choices = ", ".join(BACKENDS)
        raise ValueError(
            f"NEWSRADAR_TRANSLATION_BACKEND={settings.translation_backend!r} is not one of {choices}"
        )
    if backend == "none":
        return None
    if backend == "argos":
        from enrich.translate_argos import ArgosTranslator

        return ArgosTranslator(
            argos_packages_dir(settings), threads=settings.argos_threads, beam_size=settings.argos_beam_size
        )
    from enrich.translate_http import LibreTranslateTranslator

    key = settings.libretranslate_api_key
    return LibreTranslateTranslator(
        settings.libretranslate_url,
        api_key=key.get_secret_value() if key else None,
        timeout=settings.libretranslate_timeout,
        retries=settings.libretranslate_retries,
        backoff=settings.libretranslate_backoff,
    )


# --- articles ----------------------------------------------------------------------------------------


def first_paragraph(text: str, limit: int = _FIRST_PARAGRAPH_CHARS) -> str:
    """The lead when the extractor found none: the first non-empty paragraph, cut at a sentence end."""
    for paragraph in text.split("\n"):
        paragraph = paragraph.strip()
        if paragraph:
            if len(paragraph) <= limit:
                return paragraph
            cut = max(paragraph.rfind(mark, 0, limit) for mark in (". ", "。", "! ", "? ", "！", "？"))
            return paragraph[: cut + 1] if cut > 0 else paragraph[:limit]
    return ""


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n+", text) if p.strip()]


@dataclass
class TranslationReport:
    """What one call did: articles per status, segments sent to the backend and taken from the cache."""

    statuses: Counter[str] = field(default_factory=Counter)
    segments_translated: int = 0
    segments_cached: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Job:
    article: Article
    lead: str
    body: list[str]
    model_id: str

    def segments(self) -> list[str]:
        return [self.article.title, self.lead, *self.body]


def _fallback(article: Article, lead: str, status: str, backend: str) -> None:
    """Glossary-only English: names in English, the rest as written (better than nothing in an alert)."""
    article.translation_backend = backend
    if article.lang in TRANSLATED_LANGS:
        article.title_en = apply_glossary(article.title)
        article.lead_en = apply_glossary(lead) if lead else None
        article.translation_status = status
    else:
        article.title_en = None
        article.lead_en = None
        article.translation_status = UNAVAILABLE


def translate_articles(
    articles: Sequence[Article],
    settings: Settings,
    translator: Translator | None = None,
    cache: TranslationCache | None = None,
) -> TranslationReport:
    """Fill ``title_en``, ``lead_en`` (and ``text_en`` when full text is on), ``translation_backend``
    and ``translation_status`` on every article; never raises for a backend failure.

    ``translator`` and ``cache`` default to the configured backend and cache file.
    """
    report = TranslationReport()
    backend = settings.translation_backend.strip().lower()
    target = settings.translation_target
    own_translator = translator is None
    if translator is None and backend != "none":
        try:
            translator = get_translator(settings)
        except ImportError as error:
            warn_once(f"{backend}:import", f"backend {backend!r} is not installed ({error})")
    if translator is None and backend == "none":
        warn_once("none", "NEWSRADAR_TRANSLATION_BACKEND=none; English titles use the name glossary only")
    if translator is not None:
        backend = translator.name

    jobs: list[_Job] = []
    for article in articles:
        lead = article.lead or first_paragraph(article.text)
        if article.lang == target:
            article.title_en = article.title
            article.lead_en = lead or None
            if settings.translation_full_text:
                article.text_en = article.text
            article.translation_backend = backend
            article.translation_status = SKIPPED_ENGLISH
            continue
        model = None
        if translator is not None and article.lang in TRANSLATED_LANGS:
            model = _model_id(translator, article.lang, target)
        if model is None:
            _fallback(article, lead, GLOSSARY, backend)
            continue
        body = paragraphs(article.text) if settings.translation_full_text else []
        jobs.append(_Job(article, lead, body, model))

    if jobs and translator is not None:
        store = cache or TranslationCache(cache_path(settings))
        try:
            _run_jobs(jobs, translator, store, target, settings.translation_batch_size, report)
        finally:
            if cache is None:
                store.close()
    close = getattr(translator, "close", None) if own_translator else None
    if close is not None:
        close()  # an HTTP client's connections
    for article in articles:
        report.statuses[article.translation_status or UNAVAILABLE] += 1
    return report


def _model_id(translator: Translator, lang: str, target: str) -> str | None:
    model = translator.model_id(lang, target)
    if model is None:
        hint = " (newsradar models install)" if translator.name == "argos" else ""
        warn_once(
            f"{translator.name}:{lang}-{target}", f"{translator.name} has no {lang}→{target} model{hint}"
        )
    return model


def _run_jobs(
    jobs: list[_Job],
    translator: Translator,
    cache: TranslationCache,
    target: str,
    batch_size: int,
    report: TranslationReport,
) -> None:
    keys = {
        (job.model_id, text): cache_key(job.model_id, text) for job in jobs for text in job.segments() if text
    }
    known = cache.get_many(keys.values())
    done: dict[tuple[str, str], str] = {pair: known[key] for pair, key in keys.items() if key in known}
    report.segments_cached = len(done)
    fresh: set[tuple[str, str]] = set()

    # One backend call per (source language, model) group and batch of distinct missing segments.
    missing: dict[tuple[str, str], dict[str, None]] = {}  # ordered set of texts per group
    for job in jobs:
        source = job.article.lang or ""
        for text in job.segments():
            if text and (job.model_id, text) not in done:
                missing.setdefault((source, job.model_id), {})[text] = None
    for (source_lang, model), unique in missing.items():
        texts = list(unique)
        for start in range(0, len(texts), max(1, batch_size)):
            chunk = texts[start : start + batch_size]
            try:
                out = translator.translate(chunk, source_lang, target)
                if len(out) != len(chunk):
                    raise TranslationError(f"backend returned {len(out)} translations for {len(chunk)} texts")
            except TranslationError as error:
                report.errors.append(f"{translator.name} {source_lang}→{target}: {error}")
                log.warning(
                    "translation failed for %d texts (%s→%s): %s", len(chunk), source_lang, target, error
                )
                continue
            rows = []
            for text, translated in zip(chunk, out, strict=True):
                done[(model, text)] = translated
                fresh.add((model, text))
                rows.append((keys[(model, text)], model, translated))
            cache.put_many(rows)
            report.segments_translated += len(chunk)

    for job in jobs:
        article = job.article
        needed = [text for text in job.segments() if text]
        if any((job.model_id, text) not in done for text in needed):
            _fallback(article, job.lead, FAILED, translator.name)
            continue
        article.title_en = done[(job.model_id, article.title)] if article.title else article.title
        article.lead_en = done[(job.model_id, job.lead)] if job.lead else None
        if job.body:
            article.text_en = "\n\n".join(done[(job.model_id, p)] for p in job.body)
        article.translation_backend = translator.name
        article.translation_status = (
            TRANSLATED if any((job.model_id, text) in fresh for text in needed) else CACHED
        )
