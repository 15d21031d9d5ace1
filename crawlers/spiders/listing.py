"""Listing-page spider: article-looking links on section pages (per-source CSS/XPath override)."""

from __future__ import annotations

from typing import ClassVar

from crawlers.spiders.base import CatalogSpider


class ListingSpider(CatalogSpider):
    name = "listing"
    kinds: ClassVar[tuple[str, ...]] = ("listing",)
