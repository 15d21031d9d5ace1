"""Scrapy project: catalog-driven spiders that collect coverage, with extraction and crawl state.

Imports only the core (``newsradar``): articles leave here as raw batches for ``enrich``."""
