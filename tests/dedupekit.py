"""Shared by the story tests: the dedupe fixtures (records written for the tests) as inputs with vectors."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from enrich.dedupe import ArticleInput, fill_vectors
from enrich.embed import get_embedder

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dedupe"


def load(name: str) -> list[ArticleInput]:
    items = []
    for line in (FIXTURES / name).read_text("utf-8").splitlines():
        row = json.loads(line)
        items.append(
            ArticleInput(
                id=row["id"],
                title=row["title"],
                text=row["text"],
                url=row["url"],
                lang=row["lang"],
                source=row["source"],
                published=datetime.fromisoformat(row["published"]),
            )
        )
    embedder = get_embedder()
    fill_vectors(items, embedder.passages, embedder.name)
    return items
