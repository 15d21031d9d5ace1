"""The enrichment stages in order, over a batch of articles:

language → translate → embed → classify (event types + entities) → stories (optional hook).

Order matters: translation needs the language; the stories stage needs vectors, entities and
numbers. Each stage is a plain function over ``Article`` records, so a DAG task, the CLI and the
benchmarks run exactly the same code; per-stage wall times come back in the report (and are logged)
so a slow stage shows up in the Airflow task log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from enrich.classify import classify
from enrich.embed import Embedder, embedder_for, passage_text
from enrich.entities import entity_names
from enrich.language import detect_language
from enrich.translate import TranslationReport, Translator, translate_articles
from newsradar.article import Article
from newsradar.settings import Settings

log = logging.getLogger("newsradar.enrich")

StoriesHook = Callable[[Sequence[Article]], object]


@dataclass
class EnrichReport:
    articles: list[Article]
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds
    translation: TranslationReport | None = None

    def summary(self) -> str:
        total = sum(self.timings.values())
        stages = ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in self.timings.items())
        return f"enriched {len(self.articles)} articles in {total:.2f}s ({stages})"


def detect_languages(articles: Sequence[Article]) -> None:
    for article in articles:
        article.lang = detect_language(article.title, article.text, article.lang_hint)  # type: ignore[assignment]


def embed(articles: Sequence[Article], settings: Settings, embedder: Embedder | None = None) -> None:
    """Title + lead, original language: the multilingual model puts translations next to each other,
    so an English query finds Chinese coverage without MT."""
    embedder = embedder or embedder_for(settings)
    vectors = embedder.passages([passage_text(a.title, a.lead, a.text) for a in articles])
    for article, vector in zip(articles, vectors, strict=True):
        article.embedding = [float(x) for x in vector]
        article.embedding_model = embedder.name
        article.embedding_dim = embedder.dim


def classify_articles(articles: Sequence[Article]) -> None:
    for article in articles:
        labels = classify(article.title, article.text, article.lang)
        article.event_types = [label.type for label in labels]
        article.events = [
            {"type": label.type, "confidence": label.confidence, "evidence": list(label.evidence)}
            for label in labels
        ]
        article.entities = entity_names(article.title, article.text, article.lang)


def enrich_report(
    articles: Sequence[Article],
    settings: Settings,
    stories: StoriesHook | None = None,
    *,
    translator: Translator | None = None,
    embedder: Embedder | None = None,
) -> EnrichReport:
    """Run every stage; ``stories`` (e.g. a partial of the story assignment with its ES client) runs
    last, over the fully enriched batch."""
    batch = list(articles)
    report = EnrichReport(batch)

    def timed(stage: str, run: Callable[[], object]) -> object:
        start = time.perf_counter()
        result = run()
        report.timings[stage] = time.perf_counter() - start
        return result

    timed("language", lambda: detect_languages(batch))
    translation = timed("translate", lambda: translate_articles(batch, settings, translator=translator))
    report.translation = translation if isinstance(translation, TranslationReport) else None
    timed("embed", lambda: embed(batch, settings, embedder))
    timed("classify", lambda: classify_articles(batch))
    if stories is not None:
        timed("stories", lambda: stories(batch))
    log.info("%s", report.summary())
    return report


def enrich(
    articles: Sequence[Article], settings: Settings, stories: StoriesHook | None = None
) -> list[Article]:
    """The enriched articles (same objects, in order); timings go to the log."""
    return enrich_report(articles, settings, stories).articles
