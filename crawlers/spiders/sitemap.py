"""News-sitemap spider: Google News sitemaps (and sitemap indexes) of the selected sources."""

from __future__ import annotations

from typing import ClassVar

from crawlers.spiders.base import CatalogSpider


class NewsSitemapSpider(CatalogSpider):
    name = "sitemap"
    kinds: ClassVar[tuple[str, ...]] = ("sitemap",)
