"""The enrichment stages in order, over a batch of articles."""

from __future__ import annotations

from collections.abc import Sequence

from enrich.embed import get_embedder, passage_text
from enrich.language import detect_language
from newsradar.article import Article
from newsradar.settings import Settings


def detect_languages(articles: Sequence[Article]) -> None:
    for article in articles:
        article.lang = detect_language(article.title, article.text, article.lang_hint)  # type: ignore[assignment]


def embed(articles: Sequence[Article], settings: Settings) -> None:
    embedder = get_embedder(settings.embedding_backend, settings.embedding_threads)
    vectors = embedder.passages([passage_text(a.title, a.lead, a.text) for a in articles])
    for article, vector in zip(articles, vectors, strict=True):
        article.embedding = [float(x) for x in vector]
        article.embedding_model = embedder.name


def enrich(articles: Sequence[Article], settings: Settings) -> list[Article]:
    detect_languages(articles)
    embed(articles, settings)
    return list(articles)
