"""The catalog-driven spider: request/response glue only.

Discovery rules live in `crawlers.discovery`, page classification and extraction in
`crawlers.pages`, politeness and conditional GET in middlewares, state commits and the stats report
in extensions. A spider here only routes responses and counts outcomes per source.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from scrapy import Request, Spider
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from crawlers.catalog import Source
from crawlers.discovery import Link, listing_links, parse_feed, parse_sitemap
from crawlers.faults import failure_reason
from crawlers.pages import page_outcome
from newsradar.urls import canonicalize

#: Sitemap indexes nest; real ones are one level deep, loops and runaway nesting stop here.
MAX_SITEMAP_DEPTH = 3
#: Errors kept with URL and reason in the stats report (per crawl); counters are never capped.
MAX_ERRORS = 200


class CatalogSpider(Spider):
    """Arguments: `sources_file` (JSON list of Source objects) and optional `since` (ISO 8601).

    Subclasses choose which entry points they follow (`kinds`).
    """

    kinds: ClassVar[tuple[str, ...]] = ("feed", "sitemap", "listing")

    def __init__(self, sources_file: str = "", since: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources = self.load_sources(sources_file, kwargs)
        self.since = datetime.fromisoformat(since) if since else None
        self.claimed: set[str] = set()
        self.emitted_ids: set[str] = set()
        self.pending_seen: dict[str, str] = {}
        self.pending_validators: dict[str, tuple[str | None, str | None]] = {}
        self.tainted: set[str] = set()
        self.errors: list[dict[str, str]] = []

    def load_sources(self, sources_file: str, kwargs: dict[str, Any]) -> list[Source]:
        if not sources_file:
            raise ValueError(f"spider {self.name} needs -a sources_file=PATH (a JSON list of sources)")
        data = json.loads(Path(sources_file).read_text(encoding="utf-8"))
        return [Source.model_validate(item) for item in data]

    # ------------------------------------------------------------------------------ counting

    def count(self, source: str, key: str, value: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"newsradar/{source}/{key}", value)

    def fail(self, source: str, reason: str, url: str, kind: str, origin: str | None) -> None:
        self.count(source, f"failed/{reason}")
        if origin:
            self.tainted.add(origin)
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"source": source, "kind": kind, "url": url, "reason": reason})

    # ------------------------------------------------------------------------------ requests

    async def start(self) -> AsyncIterator[Request]:
        for source in self.sources:
            self.count(source.name, "discovered", 0)  # every selected source shows up in the stats
            for kind, url in source.start_urls():
                if kind in self.kinds:
                    yield self.document_request(source, kind, url, depth=0)

    def document_request(self, source: Source, kind: str, url: str, depth: int) -> Request:
        return Request(
            url,
            callback=self.parse_document,
            errback=self.document_error,
            dont_filter=True,
            meta={
                "source": source,
                "kind": kind,
                "depth_level": depth,
                "newsradar_conditional": True,
                "handle_httpstatus_list": [304],
            },
        )

    def schedule_articles(
        self, source: Source, links: list[Link], via: str, origin: str
    ) -> Iterator[Request]:
        fresh: list[tuple[str, Link]] = []
        for link in links:
            key = canonicalize(link.url)
            if key in self.claimed:
                continue
            self.claimed.add(key)
            self.count(source.name, "discovered")
            if self.since is not None and link.published is not None and link.published < self.since:
                self.count(source.name, "skipped/old")
                continue
            fresh.append((key, link))
        seen = self.already_seen([key for key, _ in fresh])
        for key, link in fresh:
            if key in seen:
                self.count(source.name, "skipped/seen")
                continue
            try:
                request = Request(
                    key,
                    callback=self.parse_article,
                    errback=self.article_error,
                    dont_filter=True,
                    meta={"source": source, "kind": "article", "origin": origin},
                    cb_kwargs={"hint": link, "via": via},
                )
            except ValueError:  # a link no URL parser accepts: counted, and the feed's other links go on
                self.count(source.name, "failed/bad_url")
                continue
            yield request

    def refuse_schemes(self, source: Source, urls: list[str]) -> None:
        """Links to file:, javascript:, data:, ftp: ... are listed but never fetched: counted as
        `skipped.bad_scheme` (not a failure: the document stays valid for conditional GET)."""
        for url in dict.fromkeys(urls):
            if url in self.claimed:
                continue
            self.claimed.add(url)
            self.count(source.name, "discovered")
            self.count(source.name, "skipped/bad_scheme")

    def already_seen(self, keys: list[str]) -> set[str]:
        state_db = self.settings.get("NEWSRADAR_STATE_DB")
        if not state_db or not keys:
            return set()
        from crawlers.state import CrawlState

        with CrawlState(Path(state_db)) as state:
            return state.seen_among(keys, batch=self.settings.get("NEWSRADAR_OUTPUT") or "")

    # ------------------------------------------------------------------------------ callbacks

    def parse_document(self, response: Response) -> Iterator[Request]:
        source: Source = response.meta["source"]
        kind: str = response.meta["kind"]
        url = response.request.url if response.request is not None else response.url
        if response.status == 304:
            self.count(source.name, "skipped/not_modified")
            return
        self.count(source.name, f"documents/{kind}")
        validators = response.meta.get("newsradar_validators")
        if validators:
            self.pending_validators[url] = validators
        rejected: list[str] = []
        if kind == "feed":
            content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
            links, problem = parse_feed(response.body, response.url, content_type, rejected)
            self.refuse_schemes(source, rejected)
            if not links:
                self.fail(source.name, "broken_feed" if problem else "empty_feed", url, kind, None)
                self.pending_validators.pop(url, None)
                return
            if problem:
                self.count(source.name, "notes/feed_malformed")
            yield from self.schedule_articles(source, links, "feed", url)
        elif kind == "sitemap":
            links, children, problem = parse_sitemap(response.body, response.url, rejected)
            self.refuse_schemes(source, rejected)
            if problem:
                self.fail(source.name, "broken_sitemap", url, kind, None)
                self.pending_validators.pop(url, None)
                return
            depth = int(response.meta.get("depth_level", 0))
            for child in children:
                if depth < MAX_SITEMAP_DEPTH and canonicalize(child) not in self.claimed:
                    self.claimed.add(canonicalize(child))
                    yield self.document_request(source, "sitemap", child, depth + 1)
            yield from self.schedule_articles(source, links, "sitemap", url)
        else:
            if not isinstance(response, TextResponse):
                self.fail(source.name, "not_html", url, kind, None)
                return
            found = listing_links(
                response.text, response.url, source.selectors.links, source.selectors.link_pattern
            )
            yield from self.schedule_articles(source, [Link(u) for u in found], "listing", url)

    def parse_article(self, response: Response, hint: Link, via: str) -> Iterator[dict[str, Any]]:
        source: Source = response.meta["source"]
        origin: str | None = response.meta.get("origin")
        self.count(source.name, "fetched")
        if not isinstance(response, TextResponse):
            self.count(source.name, "skipped/not_html")
            self.pending_seen[canonicalize(response.url)] = source.name
            return
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        outcome = page_outcome(
            response.body,
            response.url,
            source,
            content_type=content_type,
            hint=hint,
            via=via,
            since=self.since,
        )
        for note in outcome.notes:
            self.count(source.name, f"notes/{note}")
        if outcome.failed:
            self.fail(source.name, outcome.failed, response.url, "article", origin)
            return
        for key in outcome.seen_keys:
            self.pending_seen[key] = source.name
        if outcome.skipped:
            self.count(source.name, f"skipped/{outcome.skipped}")
            return
        assert outcome.article is not None
        if outcome.article["id"] in self.emitted_ids:
            self.count(source.name, "skipped/duplicate")
            return
        self.emitted_ids.add(outcome.article["id"])
        self.count(source.name, "extracted")
        yield outcome.article

    # ------------------------------------------------------------------------------ errors

    def document_error(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self.record_error(failure, request.meta["source"], request.meta["kind"], request.url, None)

    def article_error(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self.record_error(failure, request.meta["source"], "article", request.url, request.meta.get("origin"))

    def record_error(self, failure: Failure, source: Source, kind: str, url: str, origin: str | None) -> None:
        reason = failure_reason(failure.value) if failure.value is not None else "error"
        if reason == "robots":
            self.count(source.name, "skipped/robots")
            return
        self.fail(source.name, reason, url, kind, origin)
