"""Finding article URLs: feed entries, news-sitemap entries and article-looking links on section pages.

Plain functions over bytes and URLs, so the spiders stay thin and every rule here is testable
without a reactor. Each parser reports a problem string instead of raising: a broken feed is counted
and the crawl goes on with the next document.
"""

from __future__ import annotations

import calendar
import gzip
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from lxml import etree
from parsel import Selector

from newsradar.dates import parse_published

#: A gzip sitemap may not inflate beyond this: decompression bombs are cheap to send.
MAX_SITEMAP_BYTES = 50 * 1024 * 1024


@dataclass
class Link:
    """An article URL with what the document that listed it said about it."""

    url: str
    title: str = ""
    published: datetime | None = None
    lang: str | None = None


def http_url(url: str) -> bool:
    return urlsplit(url).scheme in {"http", "https"}


def _struct_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError):
        return None


def parse_feed(
    body: bytes, url: str, content_type: str | None = None, rejected: list[str] | None = None
) -> tuple[list[Link], str | None]:
    """RSS 0.9x/1.0/2.0, Atom and JSON Feed, via feedparser. Returns (links, problem).

    A truncated or malformed feed still yields the entries feedparser could recover, with a problem.
    Entry links that are not http(s) (file:, javascript:, data:, ...) are never returned; they are
    appended to `rejected` when given, so the caller can count them.
    """
    if not body.strip():
        return [], "empty feed"
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except Exception as error:  # feedparser is lenient, but a parser bug must not end the crawl
        return [], f"unparseable feed: {error}"
    problem = None
    if parsed.bozo:
        problem = f"malformed feed: {parsed.get('bozo_exception')}"
    if not parsed.entries and not parsed.get("feed"):
        return [], problem or "not a feed"
    links: list[Link] = []
    for entry in parsed.entries:
        link = entry.get("link") or ""
        if not link:
            for alt in entry.get("links", []):
                if alt.get("rel", "alternate") == "alternate" and alt.get("href"):
                    link = alt["href"]
                    break
        if not link:
            guid = entry.get("id") or ""
            link = guid if guid.startswith(("http://", "https://")) else ""
        if not link:
            continue
        link = urljoin(url, link.strip())
        if not http_url(link):
            if rejected is not None:
                rejected.append(link)
            continue
        published = _struct_time(entry.get("published_parsed") or entry.get("updated_parsed"))
        links.append(Link(link, entry.get("title", "") or "", published, entry.get("language")))
    return links, problem


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse_sitemap(
    body: bytes, url: str, rejected: list[str] | None = None
) -> tuple[list[Link], list[str], str | None]:
    """A Google News sitemap (or plain urlset) or a sitemap index: (articles, child sitemaps, problem).

    Locations that are not http(s) go to `rejected` (when given) instead of the result."""
    if body[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as handle:
                body = handle.read(MAX_SITEMAP_BYTES + 1)
        except (OSError, EOFError) as error:
            return [], [], f"bad gzip sitemap: {error}"
        if len(body) > MAX_SITEMAP_BYTES:
            return [], [], "sitemap too large after decompression"
    if not body.strip():
        return [], [], "empty sitemap"
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as error:
        return [], [], f"unparseable sitemap: {error}"
    if root is None:
        return [], [], "unparseable sitemap"
    kind = _local(root.tag)
    if kind not in {"urlset", "sitemapindex"}:
        return [], [], f"not a sitemap (root element <{kind}>)"
    links: list[Link] = []
    children: list[str] = []
    for node in root:
        fields: dict[str, str] = {}
        for element in node.iter():
            name = _local(element.tag)
            if name and element.text and element.text.strip() and name not in fields:
                fields[name] = element.text.strip()
        loc = fields.get("loc")
        if not loc:
            continue
        loc = urljoin(url, loc)
        if not http_url(loc):
            if rejected is not None:
                rejected.append(loc)
            continue
        if kind == "sitemapindex":
            children.append(loc)
            continue
        published = parse_published(fields.get("publication_date") or fields.get("lastmod"))
        links.append(Link(loc, fields.get("title", ""), published, fields.get("language")))
    return links, children, None


# ------------------------------------------------------------------------------- listing pages

_NOT_ARTICLE_PATH = re.compile(
    r"/(tag|tags|topic|topics|thema|themen|category|categories|author|autor|authors|search|suche|login|"
    r"register|abo|subscribe|newsletter|impressum|datenschutz|privacy|about|kontakt|contact|video|videos|"
    r"podcast|podcasts|page|seite)(/|$)",
    re.I,
)
_FILE_SUFFIX = re.compile(r"\.(jpe?g|png|gif|webp|svg|pdf|zip|mp3|mp4|css|js|xml|rss|atom|json)$", re.I)
_DATE_IN_PATH = re.compile(r"/(19|20)\d{2}[/-]?\d{1,2}")
_LONG_SLUG = re.compile(r"[\w]+(?:[-_][\w]+){3,}")
_ARTICLE_ID = re.compile(r"\d{5,}")


def looks_like_article(url: str, listing_url: str) -> bool:
    """Heuristic for links on section pages: same site, deep or dated or slugged path, not navigation."""
    parts, base = urlsplit(url), urlsplit(listing_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    site = ".".join((base.hostname or "").split(".")[-2:])
    if parts.hostname != base.hostname and not parts.hostname.endswith("." + site):
        return False
    path = parts.path
    if path.rstrip("/") in {"", urlsplit(listing_url).path.rstrip("/")} or _FILE_SUFFIX.search(path):
        return False
    if path.endswith(("/index.html", "/index.htm")) or _NOT_ARTICLE_PATH.search(path):
        return False
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return bool(_DATE_IN_PATH.search(path) or _LONG_SLUG.search(last) or _ARTICLE_ID.search(last))


def _select(selector: Selector, expression: str) -> list[str]:
    nodes = selector.xpath(expression) if expression.startswith(("/", "(")) else selector.css(expression)
    values = []
    for node in nodes:
        href = node.attrib.get("href") if hasattr(node, "attrib") else None
        value = href or node.get()
        if value:
            values.append(value.strip())
    return values


def listing_links(
    html: str, listing_url: str, links_selector: str | None = None, link_pattern: str | None = None
) -> list[str]:
    """Article URLs on a section page, in page order, without repeats."""
    selector = Selector(text=html)
    raw = _select(selector, links_selector) if links_selector else selector.css("a::attr(href)").getall()
    pattern = re.compile(link_pattern) if link_pattern else None
    found: list[str] = []
    for href in raw:
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        url = urljoin(listing_url, href).split("#", 1)[0]
        if pattern is not None:
            if not pattern.search(url) or not http_url(url):
                continue
        elif not (links_selector and http_url(url)) and not looks_like_article(url, listing_url):
            continue
        if url not in found:
            found.append(url)
    return found


def select_text(html: str, expression: str) -> str:
    """Text of a per-source title/body override, paragraphs separated by a blank line."""
    selector = Selector(text=html)
    nodes = selector.xpath(expression) if expression.startswith(("/", "(")) else selector.css(expression)
    parts = []
    for node in nodes:
        text = " ".join(" ".join(node.xpath(".//text()").getall()).split())
        if text:
            parts.append(text)
    return "\n\n".join(parts)
