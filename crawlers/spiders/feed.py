"""Feed spider: RSS, Atom and JSON Feed entries of the selected sources, followed to their articles."""

from __future__ import annotations

from typing import Any, ClassVar

from crawlers.catalog import Source, source_from_params
from crawlers.spiders.base import CatalogSpider


class FeedSpider(CatalogSpider):
    """`-a sources_file=PATH`, or one ad-hoc source.

    Ad hoc: `-a feeds=URL[,URL] -a source=NAME [-a lang=de -a country=DE]`.
    """

    name = "feed"
    kinds: ClassVar[tuple[str, ...]] = ("feed",)

    def load_sources(self, sources_file: str, kwargs: dict[str, Any]) -> list[Source]:
        feeds = [url.strip() for url in str(kwargs.get("feeds", "")).split(",") if url.strip()]
        if sources_file or not feeds:
            return super().load_sources(sources_file, kwargs)
        params = {"name": kwargs.get("source") or "unknown", "feeds": feeds}
        params.update({key: kwargs[key] for key in ("lang", "country", "timezone") if kwargs.get(key)})
        return [source_from_params(params)]
