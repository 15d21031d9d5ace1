"""The crawl subprocess: `python -m crawlers.launch SPIDER [-a NAME=VALUE ...] [-s NAME=VALUE ...]`.

What `scrapy crawl` does for one spider of this project (project settings, `-s` at command-line
priority, `-a` as spider arguments, exit 1 when the crawler could not start), through Scrapy's own
`AsyncCrawlerProcess` rather than the `scrapy` command line. That command line imports every command
module Scrapy ships (shell, bench, parse, ...) before it runs one, on every poll of every source: the
crawl of a 100-article cycle took 2.85 CPU s through it and 2.52 through this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"invalid {flag} value {item!r}: use {flag} NAME=VALUE")
        pairs[name] = value
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawlers.launch", description=__doc__)
    parser.add_argument("spider", help="spider name (news, feed, sitemap, listing)")
    parser.add_argument("-a", dest="spargs", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-s", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    spider_args, overrides = _pairs(args.spargs, "-a"), _pairs(args.settings, "-s")

    # Imported here, a few frames deep, instead of by the download handler deep inside the running
    # reactor: each of this module's deprecated-class aliases calls inspect.stack(), whose cost grows
    # with the stack's depth (about 0.1 CPU s per crawl from there).
    import scrapy.core.downloader.contextfactory  # noqa: F401
    from scrapy.crawler import AsyncCrawlerProcess
    from scrapy.utils.project import get_project_settings

    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawlers.settings")
    settings = get_project_settings()
    settings.setdict(overrides, priority="cmdline")
    process = AsyncCrawlerProcess(settings)
    process.crawl(args.spider, **spider_args)
    process.start()
    return 1 if process.bootstrap_failed else 0


if __name__ == "__main__":
    sys.exit(main())
