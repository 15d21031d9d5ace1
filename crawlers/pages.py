"""From one fetched page to an article record, or to the reason it is not one.

The spider hands over bytes and headers; this module decides what the page is (article, empty,
malformed, listing/section page, paywalled teaser, too old) so every outcome is counted by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crawlers.catalog import Source
from crawlers.charset import normalise_charset
from crawlers.discovery import Link, select_text
from crawlers.extract import extract
from newsradar.article import article_id
from newsradar.text import count_han
from newsradar.urls import canonicalize, same_site

#: Below this much body text a page is a teaser, a stub or navigation, not an article.
MIN_TEXT_CHARS = 200
MIN_TEXT_CHARS_CJK = 80
#: A paywalled page with less text than this is only the teaser: skipped as `paywall`.
PAYWALL_TEASER_CHARS = 400
#: Pages whose visible text is mostly link text are section or index pages.
MAX_LINK_DENSITY = 0.5

_ARTICLE_OG_TYPES = {"article", "news", "newsarticle", "blogposting", "blog"}
_META_CHARSET = re.compile(rb"<meta[^>]{0,300}?charset", re.I)


@dataclass
class Outcome:
    """Exactly one of `article`, `skipped`, `failed` is set; `notes` are anomalies that were handled."""

    article: dict[str, Any] | None = None
    skipped: str | None = None
    failed: str | None = None
    notes: list[str] = field(default_factory=list)
    seen_keys: list[str] = field(default_factory=list)


def header_charset(content_type: str | None) -> str | None:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def page_outcome(
    body: bytes,
    url: str,
    source: Source,
    *,
    content_type: str | None = None,
    hint: Link | None = None,
    via: str = "feed",
    since: datetime | None = None,
) -> Outcome:
    """Classify and extract one article page; never raises for bad input."""
    outcome = Outcome(seen_keys=[canonicalize(url)])
    if not body.strip():
        outcome.failed = "empty_page"
        return outcome
    declared = header_charset(content_type)
    result = extract(body, url, declared_encoding=declared, timezone=source.timezone)
    if declared is None and not _META_CHARSET.search(body[:16384]):
        outcome.notes.append("charset_missing")
    elif declared and normalise_charset(declared) not in {result.encoding, None}:
        outcome.notes.append("charset_corrected")
    if not result.title and not result.text:
        outcome.failed = "malformed_html"
        return outcome

    title = result.title or (hint.title if hint else "")
    text = result.text
    if source.selectors.title or source.selectors.body:  # a source's own selectors beat the heuristics
        html = body.decode(result.encoding, errors="replace")
        if source.selectors.title:
            title = select_text(html, source.selectors.title) or title
        if source.selectors.body:
            text = select_text(html, source.selectors.body) or text

    og_type, has_markup, link_density = result.og_type, result.article_markup, result.link_density
    cjk = count_han(text[:2000]) > len(text[:2000]) / 3
    too_short = len(text) < (MIN_TEXT_CHARS_CJK if cjk else MIN_TEXT_CHARS)
    not_article_type = og_type is not None and og_type.strip().lower() not in _ARTICLE_OG_TYPES
    if not title or too_short or (not has_markup and (not_article_type or link_density > MAX_LINK_DENSITY)):
        outcome.skipped = "paywall" if result.paywall and too_short else "not_article"
        return outcome
    if result.paywall and len(text) < PAYWALL_TEASER_CHARS:
        outcome.skipped = "paywall"
        return outcome

    published, published_source = result.published, result.published_source
    if published is None and hint is not None and hint.published is not None:
        published, published_source = hint.published, ("sitemap" if via == "sitemap" else "feed")
    if since is not None and published is not None and published < since:
        outcome.skipped = "old"
        return outcome

    claimed = result.canonical_url
    if claimed and not same_site(claimed, url, source.syndication):
        # A page may not speak for another site: taking its canonical would let one site overwrite
        # another's article and mark that site's URL seen.
        outcome.notes.append("canonical_foreign")
        claimed = None
    canonical = canonicalize(claimed or url)
    if canonical not in outcome.seen_keys:
        outcome.seen_keys.append(canonical)
    outcome.article = {
        "id": article_id(canonical),
        "url": url,
        "canonical_url": canonical,
        "source": source.name,
        "title": title,
        "text": text,
        "lead": result.lead,
        "published": published,
        "published_source": published_source,
        "authors": result.authors,
        "lang_hint": result.lang_hint or source.lang,
        "country": source.country,
        "paywall": result.paywall,
        "fetched_at": datetime.now(UTC),
        "image": result.image,
        "encoding": result.encoding,
        "discovered_via": via,
    }
    return outcome
