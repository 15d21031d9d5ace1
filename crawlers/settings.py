"""Scrapy settings: components are wired here, spiders stay thin.

Politeness defaults follow what publishers expect from a well-behaved news crawler: robots.txt,
an identifying User-Agent, AutoThrottle and a per-domain concurrency cap.
"""

from __future__ import annotations

import os

BOT_NAME = "newsradar"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

USER_AGENT = os.environ.get(
    "NEWSRADAR_USER_AGENT", "newsradar/0.1 (news monitoring crawler; respects robots.txt)"
)
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = os.environ.get("NEWSRADAR_CRAWL_LOG_LEVEL", "INFO")
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

ITEM_PIPELINES = {
    "crawlers.pipelines.ValidateArticlePipeline": 100,
    "crawlers.pipelines.StagingWriterPipeline": 900,
}

EXTENSIONS = {"crawlers.extensions.StatsFile": 500}
