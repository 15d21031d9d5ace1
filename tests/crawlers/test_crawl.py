"""Crawling the sample site through the real replay server with a real Scrapy subprocess."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from crawlers.catalog import Selectors, sample_catalog, source_from_params
from crawlers.run import run_crawl
from crawlers.state import CrawlState
from newsradar.article import Article
from newsradar.dates import parse_since
from newsradar.settings import Settings, get_settings
from stack.replay import SAMPLE_SITE, ReplayServer

MANIFEST = json.loads((SAMPLE_SITE / "MANIFEST.json").read_text(encoding="utf-8"))
FAST = {"AUTOTHROTTLE_START_DELAY": "0.05", "LOG_LEVEL": "WARNING"}


def _settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state")


def _articles(path: str) -> list[Article]:
    return [Article.model_validate_json(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _article_hits(server: ReplayServer) -> Counter[str]:
    return Counter({path: n for path, n in server.httpd.hits.items() if "/2026/" in path})


def test_a_crawl_retried_after_its_commit_rebuilds_its_batch(tmp_path: Path) -> None:
    """A task retried after the seen-URL commit writes the same batch again: before batches were
    recorded with seen URLs, the retry found everything seen (and every feed 304) and replaced the
    batch with an empty one, so those articles were never processed."""
    settings = _settings(tmp_path)
    with ReplayServer(SAMPLE_SITE) as server:
        chosen = ("techbote", "xinzhi")
        sources = [s for s in sample_catalog(server.base_url, SAMPLE_SITE) if s.name in chosen]
        batch = tmp_path / "batch" / "raw.jsonl"
        first = run_crawl(sources, batch, settings=settings, extra_settings=FAST)
        ids = sorted(a.id for a in _articles(first.output))
        assert len(ids) >= 6
        retried = run_crawl(sources, batch, settings=settings, extra_settings=FAST)
        assert sorted(a.id for a in _articles(retried.output)) == ids  # the same batch, whole
        # Another batch (the next scheduled crawl) still finds nothing new.
        later = run_crawl(sources, tmp_path / "later.jsonl", settings=settings, extra_settings=FAST)
        assert later.articles == 0
    with CrawlState(settings.crawl_state_path) as state:
        assert state.counts()["seen"] == len(ids)  # committed once, however often the batch was written


def test_sample_site_crawl_then_recrawl_fetches_only_new(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE, site)
    settings = _settings(tmp_path)
    with ReplayServer(site) as server:
        sources = sample_catalog(server.base_url, site)
        first = run_crawl(sources, tmp_path / "run1.jsonl", settings=settings, extra_settings=FAST)
        articles = _articles(first.output)
        by_path = {urlsplit(a.url).path: a for a in articles}

        expected = [m for m in MANIFEST if m["in_feed"] and not m["robots_disallowed"]]
        for item in expected:
            assert item["path"] in by_path, f"missing {item['path']}"
            assert by_path[item["path"]].title == item["title"]
            assert by_path[item["path"]].lang_hint == item["lang"]  # the language stage decides later
        assert Counter(urlsplit(a.url).path for a in articles).most_common(1)[0][1] == 1  # each once
        assert {a.lang_hint for a in articles} == {"de", "en", "zh"}
        assert {a.discovered_via for a in articles} == {"feed", "sitemap"}

        # The robots-disallowed page is listed in a feed but never fetched.
        private = next(m["path"] for m in MANIFEST if m["robots_disallowed"])
        assert server.httpd.hits[private] == 0
        assert first.stats["sources"]["circuit-daily"]["skipped"]["robots"] == 1
        # The CAC article is only in the sitemap and is found through it.
        sitemap_only = next(m for m in MANIFEST if not m["in_feed"])
        found = by_path[sitemap_only["path"]]
        assert found.discovered_via == "sitemap" and found.title == sitemap_only["title"]
        # Tracking parameters from the feed are gone; the GBK page decoded.
        assert all("utm_" not in a.url and "utm_" not in a.canonical_url for a in articles)
        gbk = next(m for m in MANIFEST if m["encoding"] == "gbk")
        assert by_path[gbk["path"]].title == gbk["title"]
        assert first.articles == len(articles) == first.stats["totals"]["extracted"]
        assert max(_article_hits(server).values()) == 1
        with CrawlState(settings.crawl_state_path) as state:
            assert state.first_seen(by_path[expected[0]["path"]].canonical_url) is not None
        documents = [urlsplit(url).path for s in sources for url in s.feeds + s.sitemaps]

        # Second crawl: every feed and sitemap answers 304, no article page is fetched again.
        fetched_before = _article_hits(server)
        second = run_crawl(sources, tmp_path / "run2.jsonl", settings=settings, extra_settings=FAST)
        assert second.articles == 0
        for path in documents:
            assert server.httpd.not_modified[path] == 1, path
        assert second.stats["totals"]["skipped"]["not_modified"] == len(documents)
        assert _article_hits(server) == fetched_before
        assert max(_article_hits(server).values()) == 1

        # A new article appears in one feed: only that page is fetched on the third crawl.
        new_page = site / "techbote" / "2026" / "11" / "neues-ki-gesetz.html"
        new_page.write_bytes(
            (site / "techbote/2026/11/kling-zensur-tiananmen.html")
            .read_bytes()
            .replace(b"kling-zensur-tiananmen.html", b"neues-ki-gesetz.html")
        )
        feed = site / "techbote" / "feed.xml"
        feed.write_text(
            feed.read_text(encoding="utf-8").replace(
                "<item>",
                "<item><title>Neu</title><link>{{BASE_URL}}/techbote/2026/11/neues-ki-gesetz.html</link>"
                "<pubDate>Sat, 28 Nov 2026 10:00:00 +0100</pubDate></item>\n    <item>",
                1,
            ),
            encoding="utf-8",
        )
        third = run_crawl(sources, tmp_path / "run3.jsonl", settings=settings, extra_settings=FAST)
        assert [urlsplit(a.url).path for a in _articles(third.output)] == [
            "/techbote/2026/11/neues-ki-gesetz.html"
        ]
        assert third.stats["sources"]["techbote"]["skipped"]["seen"] == 4
        assert max(_article_hits(server).values()) == 1


def test_listing_spider_and_link_override(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with ReplayServer(SAMPLE_SITE) as server:
        techbote = next(s for s in sample_catalog(server.base_url, SAMPLE_SITE) if s.name == "techbote")
        listing = techbote.model_copy(
            update={"feeds": [], "sitemaps": [], "listing_pages": [techbote.homepage]}
        )
        result = run_crawl(
            [listing], tmp_path / "listing.jsonl", spider="listing", settings=settings, extra_settings=FAST
        )
        paths = sorted(urlsplit(a.url).path for a in _articles(result.output))
        assert paths == sorted(m["path"] for m in MANIFEST if m["outlet"] == "techbote")
        assert {a.discovered_via for a in _articles(result.output)} == {"listing"}
        assert server.httpd.hits["/techbote/feed.xml"] == 0  # the listing spider ignores feeds

        narrowed = listing.model_copy(
            update={
                "name": "techbote-kling",
                "selectors": Selectors(links="section.teaser-list a", link_pattern=r"kling"),
            }
        )
        result = run_crawl(
            [narrowed],
            tmp_path / "narrow.jsonl",
            spider="listing",
            settings=_settings(tmp_path / "other"),
            extra_settings=FAST,
        )
        assert [urlsplit(a.url).path for a in _articles(result.output)] == [
            "/techbote/2026/11/kling-zensur-tiananmen.html"
        ]


def test_since_and_per_source_feed_crawl(tmp_path: Path) -> None:
    """A per-source call with an ad-hoc source (display name as given by an operator), and `since`
    skipping older entries."""
    with ReplayServer(SAMPLE_SITE) as server:
        adhoc = source_from_params(
            {"name": "Netzwacht", "feeds": [server.url("netzwacht/feed.xml")], "lang": "de"}
        )
        result = run_crawl(
            [adhoc], tmp_path / "one.jsonl", settings=_settings(tmp_path / "one"), extra_settings=FAST
        )
        assert result.articles == 3
        assert {a.source for a in _articles(result.output)} == {"netzwacht"}

        sources = [s for s in sample_catalog(server.base_url, SAMPLE_SITE) if s.name == "circuit-daily"]
        since = parse_since("2026-11-25T12:00:00-05:00")
        result = run_crawl(
            sources, tmp_path / "since.jsonl", since=since, settings=_settings(tmp_path), extra_settings=FAST
        )
        published = {a.title: a.published for a in _articles(result.output)}
        assert published and all(p is not None and p >= since for p in published.values())
        assert result.stats["sources"]["circuit-daily"]["skipped"]["old"] >= 2


def test_parse_since() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert parse_since("6h", now) == now - timedelta(hours=6)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("2026-11-20") == datetime(2026, 11, 20, tzinfo=UTC)
    with pytest.raises(ValueError, match="duration"):
        parse_since("yesterday")


def test_cli_crawl_sample_prints_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from commands.main import app

    monkeypatch.setenv("NEWSRADAR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NEWSRADAR_REPLAY_PORT", "0")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["crawl", "--sample", "--lang", "zh", "--source", "xinzhi"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["articles"] == 4 and set(summary["sources"]) == {"xinzhi"}
    assert summary["output"].startswith(str(tmp_path / "state" / "staging" / "batches"))
    assert Path(summary["stats_file"]).is_file()
    assert "xinzhi" in result.stderr and "extracted=4" in result.stderr
    assert all(a.lang_hint == "zh" for a in _articles(summary["output"]))

    bad = CliRunner().invoke(app, ["crawl", "--sample", "--source", "nope"])
    assert bad.exit_code == 1 and "nope" in bad.stderr
