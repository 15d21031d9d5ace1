"""Every fault is counted with its reason and the crawl goes on (real replay server, real Scrapy)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ledger import Ledger

from crawlers.catalog import Source
from crawlers.middlewares import private_host, replay_url
from crawlers.run import run_crawl
from crawlers.state import CrawlState
from newsradar.article import Article
from newsradar.settings import Settings
from stack.replay import SAMPLE_SITE, ReplayServer

TEST_SETTINGS = {
    "DOWNLOAD_TIMEOUT": "2",  # the slow page below sleeps 6 s; 2 s leaves headroom on a loaded machine
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
                f"{base}/_fault/slow/6",
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


def test_faults_are_counted_and_the_crawl_goes_on(fault_site: Path, tmp_path: Path, ledger: Ledger) -> None:
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
    ledger.fault(sum(sum(counts["failed"].values()) for counts in per_source.values()))
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


def test_replay_by_host_and_private_redirects_refused(tmp_path: Path, ledger: Ledger) -> None:
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
    ledger.hostile(2, counts["failed"].get("redirect_refused", 0))  # to loopback, to file://
    assert counts["skipped"]["robots"] == 1
    assert counts["failed"]["redirect_refused"] == 2


def test_url_helpers() -> None:
    assert replay_url("https://www.heise.de/rss/a.xml?x=1", "http://127.0.0.1:8765/") == (
        "http://127.0.0.1:8765/www.heise.de/rss/a.xml?x=1"
    )
    assert private_host("127.0.0.1") and private_host("10.1.2.3") and private_host("localhost")
    assert private_host("[::1]") and private_host("169.254.169.254")
    assert not private_host("93.184.216.34") and not private_host("www.heise.de")


def test_a_cross_site_canonical_never_becomes_the_identity(tmp_path: Path, ledger: Ledger) -> None:
    """A page naming another site's URL as its canonical (rel=canonical or og:url) would take that
    site's article id and mark its URL seen; only same-site canonicals (or a declared syndication
    partner's) are taken. Before: the hijacking page got the victim's id and URL."""
    site = tmp_path / "site"
    own_canonical = re.compile(r'<link rel="canonical"[^>]*>|<meta property="og:url"[^>]*>')
    page = own_canonical.sub("", (SAMPLE_SITE / GOOD).read_text("utf-8"))
    for name, canonical in (
        ("hijack.html", "https://victim.example/news/exclusive.html"),
        ("og.html", "https://victim.example/news/og.html"),
        ("amp.html", "{{BASE_URL}}/news/original.html"),
        ("wire.html", "https://apnews.com/article/wire-copy"),
    ):
        tag = (
            f'<meta property="og:url" content="{canonical}">'
            if name == "og.html"
            else f'<link rel="canonical" href="{canonical}">'
        )
        body = page.replace("<head>", f"<head>{tag}", 1)
        (site / "news").mkdir(parents=True, exist_ok=True)
        (site / "news" / name).write_text(body.replace("Kling", f"Kling {name}"), encoding="utf-8")
    links = [f"{{{{BASE_URL}}}}/news/{n}" for n in ("hijack.html", "og.html", "amp.html", "wire.html")]
    (site / "feed.xml").write_text(_rss(links), encoding="utf-8")
    settings = Settings(state_dir=tmp_path / "state")
    with ReplayServer(site) as server:
        feed = f"{server.base_url}/feed.xml"
        source = Source(name="canon", lang="en", feeds=[feed], syndication=["apnews.com"])
        result = run_crawl([source], tmp_path / "out.jsonl", settings=settings, extra_settings=TEST_SETTINGS)
        base = server.base_url
    found = {urlsplit(a.url).path: a.canonical_url for a in _articles(result.output)}
    ledger.hostile(
        2, int(found["/news/hijack.html"].startswith(base)) + int(found["/news/og.html"].startswith(base))
    )
    assert found["/news/hijack.html"] == f"{base}/news/hijack.html"
    assert found["/news/og.html"] == f"{base}/news/og.html"
    assert found["/news/amp.html"] == f"{base}/news/original.html"  # same site: taken
    assert found["/news/wire.html"] == "https://apnews.com/article/wire-copy"  # declared partner: taken
    assert result.stats["sources"]["canon"]["notes"]["canonical_foreign"] == 2
    with CrawlState(settings.crawl_state_path) as state:
        victims = ["https://victim.example/news/exclusive.html", "https://victim.example/news/og.html"]
        assert not state.seen_among(victims)


PRIVATE_LINKS = [
    "http://10.1.2.3/admin",
    "http://100.100.100.200/latest/meta-data/",  # a cloud metadata service, in CGNAT space
    "http://100.64.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[2002:7f00:1::1]/",  # 6to4 wrapping 127.0.0.1
    "http://192.168.1.1/router",
    "http://2130706433/",  # 127.0.0.1 as one number
]


def test_direct_links_to_private_addresses_are_refused(tmp_path: Path, ledger: Ledger) -> None:
    """Feed links (not redirects) that point into private space are refused before any connection;
    before, only redirects were checked and these were fetched."""
    root = tmp_path / "recorded"
    host = root / "news.example"
    (host / "2026").mkdir(parents=True)
    shutil.copy(SAMPLE_SITE / GOOD, host / "2026" / "good.html")
    (host / "feed.xml").write_text(_rss(["https://news.example/2026/good.html", *PRIVATE_LINKS]))
    with ReplayServer(root) as server:
        settings = Settings(state_dir=tmp_path / "state", replay_url=server.base_url)
        source = Source(name="news-example", lang="en", feeds=["https://news.example/feed.xml"])
        result = run_crawl([source], tmp_path / "out.jsonl", settings=settings, extra_settings=TEST_SETTINGS)
        hits = dict(server.httpd.hits)
    refused = result.stats["sources"]["news-example"]["failed"].get("private_address", 0)
    ledger.hostile(len(PRIVATE_LINKS), refused)
    assert [a.url for a in _articles(result.output)] == ["https://news.example/2026/good.html"]
    assert refused == len(PRIVATE_LINKS)
    assert not [path for path in hits if "10.1.2.3" in path or "100.100" in path or "192.168" in path]


HOSTS = Path("/etc/hosts")
PUBLIC_LOOKING = "feeds.newsradar-probe.example"


@pytest.fixture
def public_name_for_loopback() -> Iterator[str]:
    """A public-looking name that the system resolver answers with 127.0.0.1 (a hosts entry), as a
    hostile DNS record would: the crawler must resolve it and refuse."""
    if not os.access(HOSTS, os.W_OK):
        pytest.skip("needs a writable /etc/hosts for a resolver entry (root)")
    before = HOSTS.read_text()
    HOSTS.write_text(before.rstrip("\n") + f"\n127.0.0.1 {PUBLIC_LOOKING}\n")
    try:
        yield PUBLIC_LOOKING
    finally:
        HOSTS.write_text(before)


def test_a_name_that_resolves_to_loopback_is_refused(
    tmp_path: Path, public_name_for_loopback: str, ledger: Ledger
) -> None:
    with ReplayServer(SAMPLE_SITE) as server:
        port = urlsplit(server.base_url).port
        feed = f"http://{public_name_for_loopback}:{port}/techbote/feed.xml"
        source = Source(name="probe", lang="de", feeds=[feed])
        settings = Settings(state_dir=tmp_path / "state")
        result = run_crawl([source], tmp_path / "out.jsonl", settings=settings, extra_settings=TEST_SETTINGS)
        hits = dict(server.httpd.hits)
    ledger.hostile(1, int(hits.get("/techbote/feed.xml", 0) == 0))
    assert result.articles == 0
    assert result.stats["sources"]["probe"]["failed"]["private_address"] >= 1
    assert hits.get("/techbote/feed.xml", 0) == 0  # no connection was made
    # The same feed by its loopback address is a local source of the operator's choosing: fetched.
    with ReplayServer(SAMPLE_SITE) as server:
        source = Source(name="local", lang="de", feeds=[f"{server.base_url}/techbote/feed.xml"])
        local = run_crawl([source], tmp_path / "local.jsonl", settings=settings, extra_settings=TEST_SETTINGS)
    assert local.articles >= 3
