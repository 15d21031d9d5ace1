"""Every fault is counted with its reason and the crawl goes on (real replay server, real Scrapy)."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crawlers.catalog import Source
from crawlers.middlewares import private_host, replay_url
from crawlers.run import run_crawl
from crawlers.state import CrawlState
from newsradar.article import Article
from newsradar.settings import Settings
from stack.replay import SAMPLE_SITE, ReplayServer

TEST_SETTINGS = {
    "DOWNLOAD_TIMEOUT": "1",
    "RETRY_TIMES": "1",
    "NEWSRADAR_RETRY_BACKOFF": "0.05",
    "DOWNLOAD_MAXSIZE": "1000000",
    "DOWNLOAD_WARNSIZE": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "LOG_LEVEL": "WARNING",
}
GOOD = "circuit-daily/2026/11/kling-refuses-tiananmen-prompts.html"
GBK = "xinzhi/2026/11/openai-tingzhi-api-zhipu-qianyi.html"


def _rss(links: list[str]) -> str:
    items = "".join(f"<item><title>t{i}</title><link>{link}</link></item>" for i, link in enumerate(links))
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>f</title>'
    return f"{head}{items}</channel></rss>"


def _articles(path: str) -> list[Article]:
    return [Article.model_validate_json(line) for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.fixture
def fault_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for rel in (GOOD, GBK, "broken/empty.html", "broken/not-article.html", "broken/feed.xml", "robots.txt"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_SITE / rel, site / rel)
    base = "{{BASE_URL}}"
    (site / "faults.xml").write_text(
        _rss(
            [
                f"{base}/{GOOD}",
                f"{base}/_fault/status/404",
                f"{base}/_fault/status/503",
                f"{base}/_fault/slow/4",
                f"{base}/_fault/redirect/0",
                f"{base}/_fault/loop",
                f"{base}/_fault/huge/3000000",
                f"{base}/_fault/gzip-bomb/20",
                f"{base}/_fault/drop",
                f"{base}/broken/empty.html",
                f"{base}/broken/not-article.html",
                f"{base}/private/secret.html",
                f"{base}/_fault/charset/utf-8/{GBK}",
                f"{base}/_fault/redirect-to?url={base}/{GBK}",
                "ftp://example.org/file.html",
            ]
        )
    )
    (site / "garbage.xml").write_text("this is <<< not a feed")
    return site


def test_faults_are_counted_and_the_crawl_goes_on(fault_site: Path, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    with ReplayServer(fault_site) as server:
        sources = [
            Source(name="faults", lang="en", feeds=[server.url("faults.xml")]),
            Source(name="garbage-feed", lang="en", feeds=[server.url("garbage.xml")]),
            Source(name="truncated-feed", lang="en", feeds=[server.url("broken/feed.xml")]),
            Source(
                name="feed-500",
                lang="en",
                feeds=[server.url("_fault/status/500")],
                sitemaps=[server.url("faults.xml")],
            ),
            Source(name="feed-404", lang="en", feeds=[server.url("missing.xml")]),
        ]
        result = run_crawl(
            sources, tmp_path / "faults.jsonl", settings=settings, extra_settings=TEST_SETTINGS
        )
        hits = dict(server.httpd.hits)

    per_source = result.stats["sources"]
    failed = per_source["faults"]["failed"]
    assert failed["http_404"] == 1
    assert failed["http_503"] == 1 and hits["/_fault/status/503"] >= 1
    assert result.stats["http"]["retries"] >= 2  # 503 and the timeout were retried before being counted
    assert failed["timeout"] == 1
    assert failed["redirect_loop"] == 2  # the endless chain and the self-redirect
    assert 4 <= hits["/_fault/redirect/0"] + sum(n for p, n in hits.items() if "/redirect/" in p) <= 8
    assert failed["too_large"] == 2  # 3 MB page and the gzip bomb, against a 1 MB cap
    assert failed["empty_page"] == 1
    assert "connection" in failed or "truncated" in failed  # the dropped connection
    skipped = per_source["faults"]["skipped"]
    assert skipped["robots"] == 1 and hits.get("/private/secret.html", 0) == 0
    assert skipped["not_article"] == 1
    assert per_source["faults"]["notes"]["charset_corrected"] >= 1
    assert per_source["garbage-feed"]["failed"] == {"broken_feed": 1}
    assert per_source["feed-500"]["failed"]["http_500"] == 1
    assert per_source["feed-500"]["failed"]["broken_sitemap"] == 1  # an RSS file is not a sitemap
    assert per_source["feed-404"]["failed"] == {"http_404": 1}
    assert per_source["truncated-feed"]["notes"]["feed_malformed"] == 1
    assert per_source["truncated-feed"]["discovered"] == 1
    reasons = {(e["source"], e["reason"]) for e in result.stats["errors"]}
    assert ("faults", "timeout") in reasons and ("garbage-feed", "broken_feed") in reasons

    # The good page and the GBK page (behind a lying header and behind a loopback redirect) survive.
    articles = {urlsplit(a.url).path: a for a in _articles(result.output)}
    assert f"/{GOOD}" in articles
    gbk_titles = {a.title for p, a in articles.items() if "openai-tingzhi" in p or "charset" in p}
    assert gbk_titles == {"OpenAI停止向中国提供API服务 智谱等国内大模型厂商推出迁移计划"}
    assert all(a.lang_hint in {"en", "zh"} for a in articles.values())

    # A document whose articles failed keeps no validators: the next crawl re-reads it in full.
    with CrawlState(settings.crawl_state_path) as state:
        assert state.validators(sources[0].feeds[0]) == (None, None)
        assert state.is_seen(articles[f"/{GOOD}"].canonical_url)
        assert not state.is_seen(sources[0].feeds[0].rsplit("/", 1)[0] + "/_fault/status/404")


def test_replay_by_host_and_private_redirects_refused(tmp_path: Path) -> None:
    """Live-looking URLs served from `<root>/<host>/...`; a public page may not redirect into loopback."""
    root = tmp_path / "recorded"
    host = root / "news.example"
    (host / "2026").mkdir(parents=True)
    shutil.copy(SAMPLE_SITE / GOOD, host / "2026" / "good.html")
    (host / "private").mkdir()
    shutil.copy(SAMPLE_SITE / GOOD, host / "private" / "hidden.html")
    (host / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    (host / "feed.xml").write_text(
        _rss(
            [
                "https://news.example/2026/good.html?utm_source=rss",
                "https://news.example/private/hidden.html",
                "https://news.example/_fault/redirect-to?url=http://127.0.0.1:9/admin",
                "https://news.example/_fault/redirect-to?url=file:///etc/passwd",
            ]
        )
    )
    settings = Settings(state_dir=tmp_path / "state")
    with ReplayServer(root) as server:
        settings = settings.model_copy(update={"replay_url": server.base_url})
        source = Source(name="news-example", lang="en", feeds=["https://news.example/feed.xml"])
        result = run_crawl([source], tmp_path / "host.jsonl", settings=settings, extra_settings=TEST_SETTINGS)
        hits = dict(server.httpd.hits)
    articles = _articles(result.output)
    assert [a.url for a in articles] == ["https://news.example/2026/good.html"]
    assert hits["/news.example/feed.xml"] == 1 and hits["/news.example/robots.txt"] == 1
    assert hits.get("/news.example/private/hidden.html", 0) == 0
    counts = result.stats["sources"]["news-example"]
    assert counts["skipped"]["robots"] == 1
    assert counts["failed"]["redirect_refused"] == 2


def test_url_helpers() -> None:
    assert replay_url("https://www.heise.de/rss/a.xml?x=1", "http://127.0.0.1:8765/") == (
        "http://127.0.0.1:8765/www.heise.de/rss/a.xml?x=1"
    )
    assert private_host("127.0.0.1") and private_host("10.1.2.3") and private_host("localhost")
    assert private_host("[::1]") and private_host("169.254.169.254")
    assert not private_host("93.184.216.34") and not private_host("www.heise.de")
