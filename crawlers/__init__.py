"""Scrapy project: catalog-driven spiders that collect coverage, plus extraction and the replay server."""
