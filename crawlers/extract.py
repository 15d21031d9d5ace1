"""Turn one fetched news page into an :class:`Extraction` (headline, body, date, authors, ...).

trafilatura is the body extractor for German and English; everything around it exists because the
benchmark on real pages (``python -m bench.extraction``) showed where it falls short for newsradar:

* headlines keep site suffixes ("… – DW – 30.01.2024", "…-新华网"), which breaks exact-title dedup;
* publishers' structured data (JSON-LD NewsArticle, ``article:published_time``) is more reliable
  for dates/authors/paywall than heuristics, and older Chinese pages carry *no* date markup at all,
  only "2005年1月2日 09:07" in the text;
* on Chinese pages readability-lxml finds the body more often than trafilatura, so both run and
  the better-looking candidate wins;
* legacy Chinese charsets need validated decoding (see :mod:`crawlers.charset`).

The extractor must never raise: a malformed page becomes an empty :class:`Extraction` so a spider
can log and move on instead of losing the whole batch.
"""

from __future__ import annotations

import html as html_lib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from htmldate import find_date
from lxml import etree
from readability import Document
from trafilatura import bare_extraction

from crawlers.charset import decode_html
from newsradar.dates import DMY_DATE, ISO_LIKE, ZH_DATE, make_datetime, parse_published, zone
from newsradar.text import HAN_CLASS, count_han, has_han

__all__ = ["Extraction", "clean_title", "decode_html", "extract"]

log = logging.getLogger(__name__)

#: Pages above this are cut before parsing: real articles are far smaller, giant pages are
#: usually infinite-scroll dumps or attacks, and lxml/trafilatura time grows with size.
MAX_HTML_BYTES = 3_000_000
LEAD_MAX = 400

_WS = re.compile(r"[ \t\r\f\v\u00a0\u3000\u200b\ufeff]+")
# Control characters carry no text; broken or hostile pages smuggle NULs and escapes into titles.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
#: A longer "title" is a broken page (an unclosed <title> swallowing the document), not a headline.
MAX_TITLE_CHARS = 300
_WORD = re.compile(r"\w+")


@dataclass
class Extraction:
    title: str
    text: str
    lead: str
    published: datetime | None
    published_source: str
    authors: list[str] = field(default_factory=list)
    lang_hint: str | None = None
    canonical_url: str | None = None
    paywall: bool = False
    image: str | None = None
    encoding: str = "utf-8"
    # Page-type signals, from the same parse (the crawler tells articles from section pages by them):
    # og:type, article markup (<article> or JSON-LD of an Article type), share of text inside links.
    og_type: str | None = None
    article_markup: bool = False
    link_density: float = 0.0


# --------------------------------------------------------------------------------------- helpers


def _norm_ws(text: str) -> str:
    return _WS.sub(" ", _CONTROL.sub("", text)).strip()


def _paragraphs(text: str) -> str:
    """Normalise any line-based text to the contract's one-blank-line paragraph separation."""
    lines = (_norm_ws(line) for line in text.splitlines())
    return "\n\n".join(line for line in lines if line)


_LETTER = re.compile(r"[^\W\d_]")


def _cjk_share(text: str) -> float:
    sample = text[:5000]
    letters = len(_LETTER.findall(sample))
    return count_han(sample) / letters if letters else 0.0


# ------------------------------------------------------------------------------------------ dates

_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-]?(0[1-9]|1[0-2])[/-]?(0[1-9]|[12]\d|3[01])(?:[/_.-]|$)")


def _date_in_text(text: str, tz: str | None, *, need_time: bool) -> datetime | None:
    """Earliest full date in visible text, for pages (mostly older Chinese) without date markup.

    A date *with* a clock time is almost always the article's own timestamp, while bare dates in
    the text are as often events mentioned in the story, archive links or "founded on" notes, so
    timed dates are searched for first (``need_time``) and bare ones only as a last resort.
    """
    now = datetime.now(UTC) + timedelta(days=1)
    found: list[tuple[int, datetime]] = []
    for rx in (ZH_DATE, ISO_LIKE, DMY_DATE):
        for m in rx.finditer(text):
            if rx is DMY_DATE:
                dt = make_datetime(m.group(3), m.group(2), m.group(1), m.group(4), m.group(5), None)
            else:
                dt = make_datetime(*m.group(1, 2, 3, 4, 5, 6))
            if dt is None or dt.year < 1995 or (need_time and m.group(5) is None):
                continue
            aware = dt.replace(tzinfo=zone(tz))
            if aware <= now:
                found.append((m.start(), aware))
    return min(found, key=lambda item: item[0])[1] if found else None


def _htmldate(tree: Any, url: str | None, tz: str | None) -> datetime | None:
    """htmldate's markup/text heuristics, used after our structured sources came up empty."""
    try:
        found = find_date(tree, url=url, original_date=True, extensive_search=False)
    except Exception:  # htmldate is best effort; a failure must not cost the article
        log.debug("htmldate failed on %s", url, exc_info=True)
        return None
    return parse_published(found, tz) if found else None


# ---------------------------------------------------------------------------------------- JSON-LD

_ARTICLE_TYPES = re.compile(r"(Article|BlogPosting|Report|LiveBlogPosting)$", re.I)


def _walk_ld(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _walk_ld(item)
    elif isinstance(node, dict):
        yield node
        for key in ("@graph", "mainEntity", "mainEntityOfPage", "itemListElement"):
            if isinstance(node.get(key), dict | list):
                yield from _walk_ld(node[key])


def _load_json(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("<!--"):
        raw = raw.removeprefix("<!--").removesuffix("-->")
    if raw.startswith("//<![CDATA["):
        raw = raw.removeprefix("//<![CDATA[").removesuffix("//]]>")
    try:
        return json.loads(raw, strict=False)
    except ValueError:
        # Trailing commas and raw newlines are the usual CMS template slips.
        try:
            return json.loads(re.sub(r",\s*([}\]])", r"\1", raw), strict=False)
        except ValueError:
            return None


def _types(node: dict[str, Any]) -> list[str]:
    t = node.get("@type", [])
    return [str(x) for x in (t if isinstance(t, list) else [t])]


def _json_ld_article(tree: Any) -> dict[str, Any]:
    """The page's article object, preferring ones with a headline over bare WebPage nodes."""
    best: dict[str, Any] = {}
    best_rank = -1
    for script in tree.xpath('//script[contains(translate(@type,"LDJSON","ldjson"),"ld+json")]'):
        data = _load_json(script.text_content() or "")
        if data is None:
            continue
        for node in _walk_ld(data):
            types = _types(node)
            if any(_ARTICLE_TYPES.search(t) for t in types):
                rank = 3 if node.get("headline") else 2
            elif "WebPage" in types and node.get("datePublished"):
                rank = 1
            else:
                continue
            if rank > best_rank:
                best, best_rank = node, rank
    return best


def _ld_str(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("url") or value.get("@value")
    return _norm_ws(str(value)) if isinstance(value, str | int | float) and str(value).strip() else None


def _ld_names(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        name = _ld_str(item) if not isinstance(item, str) else _norm_ws(item)
        if name and not name.startswith("http"):
            names.append(name)
    return names


# ------------------------------------------------------------------------------------------ meta


def _meta(tree: Any) -> dict[str, str]:
    """First non-empty content per lower-cased property/name/itemprop key."""
    out: dict[str, str] = {}
    for el in tree.iter("meta"):
        content = el.get("content")
        if not content or not content.strip():
            continue
        for attr in ("property", "name", "itemprop", "http-equiv"):
            key = el.get(attr)
            if key:
                out.setdefault(key.strip().lower(), content.strip())
    return out


_META_DATE_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "published_time",
    "datepublished",
    "article.published",
    "publishdate",
    "publish-date",
    "publish_date",
    "pubdate",
    "publication_date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "dcterms.date",
    "dcterms.created",
    "date",
    "sailthru.date",
    "parsely-pub-date",
    "cxenseparse:recs:publishtime",
    "og:updated_time",
    "article:modified_time",
)


def _site_names(meta: dict[str, str], ld: dict[str, Any], url: str | None) -> list[str]:
    names = [meta.get("og:site_name", ""), meta.get("application-name", ""), meta.get("twitter:site", "")]
    pub = ld.get("publisher")
    names.append(_ld_str(pub) or "")
    if url:
        host = urlsplit(url).hostname or ""
        labels = [
            p
            for p in host.split(".")
            if p not in {"www", "m", "com", "co", "net", "org", "de", "cn", "uk", "at", "ch", "news"}
        ]
        names.extend(labels)
    return [n.lstrip("@").lower() for n in names if n and len(n.lstrip("@")) >= 2]


# ----------------------------------------------------------------------------------------- titles

_SEP = re.compile(
    r"\s+[|–—\-·•:»/*]{1,2}\s+|\s*[|｜_]\s*|"
    rf"(?<=[{HAN_CLASS}）」》])[-－—–](?=[{HAN_CLASS}A-Za-z])"
)
_BYLINE = re.compile(r"^(by|von|written by)\s+\w", re.I)
_DATE_ONLY = re.compile(r"^[\d.\-/年月日\s:]+$")
_GENERIC_TAIL = re.compile(
    r"^(news|nachrichten|online|aktuell|home|startseite|blog|新闻|新闻中心|资讯|正文|首页|频道|网|科技|财经|体育|娱乐|时政|国际|国内|社会|军事|汽车|房产|教育|健康|.{1,8}(网|频道|新闻|日报|晚报|报|在线|门户))$",
    re.I,
)


def _is_site_segment(segment: str, sites: Iterable[str]) -> bool:
    seg = segment.strip().lower()
    if not seg:
        return True
    if _DATE_ONLY.match(seg) or _GENERIC_TAIL.match(seg) or _BYLINE.match(seg):
        return True
    if len(seg.split()) > 6:
        return False
    squashed = re.sub(r"[\s.\-]", "", seg)
    for site in sites:
        s = re.sub(r"[\s.\-]", "", site)
        if s == squashed or (len(s) >= 4 and s in squashed) or (len(squashed) >= 4 and squashed in s):
            return True
    return False


def clean_title(title: str, sites: Iterable[str] = ()) -> str:
    """Strip leading/trailing site-name and date segments ("… – DW – 30.01.2024", "…-新华网").

    Only segments recognised as site/section names or dates are removed, so a headline with a
    genuine dash ("Fury - Usyk") survives; a bare " | " tail is always boilerplate.
    """
    title = _norm_ws(title)
    sites = list(sites)
    for _ in range(4):
        parts = list(_SEP.finditer(title))
        if not parts:
            break
        last = parts[-1]
        head, tail = title[: last.start()].strip(), title[last.end() :].strip()
        first = parts[0]
        lead_seg, rest = title[: first.start()].strip(), title[first.end() :].strip()
        boiler_sep = last.group().strip() in {"|", "｜", "_"}
        if head and (
            _is_site_segment(tail, sites)
            or (boiler_sep and len(tail) < len(head) and len(tail.split()) <= 4 and len(tail) <= 30)
        ):
            title = head
        elif (
            rest
            and len(lead_seg) < len(rest)
            and (
                _is_site_segment(lead_seg, sites)
                or (
                    first.group().strip() == "|"
                    and len(lead_seg.split()) <= 3
                    and 2 * len(lead_seg) < len(rest)
                )
            )
        ):
            title = rest
        else:
            break
    return title


def _choose_title(cands: list[str], sites: list[str]) -> str:
    """First usable candidate in publisher-priority order, cleaned of site suffixes.

    og:title is what publishers hand to social cards and is the headline most consistently; the
    JSON-LD headline is often an SEO variant, <h1> may carry a kicker and <title> the site name.
    Entities are unescaped because CMSs double-escape them inside attributes and JSON.
    """
    for cand in cands:
        if cand and cand.strip():
            cleaned = clean_title(html_lib.unescape(cand), sites)
            if cleaned and len(cleaned) <= MAX_TITLE_CHARS:
                return cleaned
    return ""


# ------------------------------------------------------------------------------------------- body

_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "blockquote",
    "pre",
    "section",
    "article",
    "table",
    "ul",
    "ol",
    "dd",
    "dt",
    "figcaption",
}


def _html_to_text(fragment: str) -> str:
    """Text of a readability summary with block boundaries kept as paragraph breaks."""
    try:
        root = lxml.html.fromstring(fragment)
    except (etree.ParserError, ValueError):
        return ""
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    parts: list[str] = []
    for ev, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if ev == "start":
            if tag in _BLOCK_TAGS:
                parts.append("\n")
            if el.text:
                parts.append(el.text)
        else:
            if tag in _BLOCK_TAGS:
                parts.append("\n")
            if el.tail and el is not root:
                parts.append(el.tail)
    return _paragraphs("".join(parts))


def _trafilatura_text(html: str, url: str | None) -> str:
    doc = bare_extraction(html, url=url, include_comments=False, with_metadata=False)
    text = getattr(doc, "text", None) if doc is not None else None
    return _paragraphs(text or "")


def _readability_text(html: str, url: str | None = None) -> str:
    return _html_to_text(Document(html).summary(html_partial=True))


def _size(text: str, chinese: bool) -> int:
    return count_han(text) if chinese else len(_WORD.findall(text))


def _paragraph_words(tree: Any) -> int:
    """Words in <p> elements outside page chrome: a cheap upper bound of the article length."""
    paras = tree.xpath("//p[not(ancestor::nav or ancestor::footer or ancestor::header or ancestor::aside)]")
    return sum(len(_WORD.findall(p.text_content())) for p in paras)


def _body_text(html: str, url: str | None, chinese: bool, p_words: int, visible_han: int = 0) -> str:
    """Run trafilatura and readability; keep the primary one unless it visibly failed.

    Each tool has one typical failure that the other does not share. trafilatura sometimes stops
    early (an inline widget ends its main-text scan), leaving well under half of the article;
    readability sometimes locks onto a caption or byline box and returns a fragment. On Chinese
    pages trafilatura's heuristics (link density, lengths tuned on Latin text) keep navigation and
    related-article blocks, so readability is primary there and trafilatura for everything else.
    The secondary tool runs only when the primary's result could be such a failure: trafilatura's
    text is part of the visible text, so a readability text that is no fragment of the visible text
    (``visible_han``) cannot be one of trafilatura's either.
    """

    def primary_failed(text: str) -> bool:
        size = _size(text, chinese)
        return size < 30 or size < 0.05 * visible_han if chinese else size < 0.5 * p_words

    first, second = (_trafilatura_text, _readability_text)
    if chinese:
        first, second = second, first
    try:
        primary = first(html, url)
    except Exception:  # either has raised on odd trees before; the other one is the fallback
        log.debug("%s failed on %s", first.__name__, url, exc_info=True)
        primary = ""
    if primary and not primary_failed(primary):
        return primary  # cannot be a failure the other tool would fix: skip the slower second run
    try:
        secondary = second(html, url)
    except Exception:
        log.debug("%s failed on %s", second.__name__, url, exc_info=True)
        secondary = ""
    tra, rea = (secondary, primary) if chinese else (primary, secondary)
    n_tra, n_rea = _size(tra, chinese), _size(rea, chinese)
    if chinese:
        return tra if n_rea < 30 or n_rea < 0.05 * n_tra else rea
    return rea if n_tra < 0.5 * n_rea else tra


# ------------------------------------------------------------------------------------------- main


def _empty(encoding: str = "utf-8") -> Extraction:
    return Extraction(
        title="",
        text="",
        lead="",
        published=None,
        published_source="unknown",
        authors=[],
        lang_hint=None,
        canonical_url=None,
        paywall=False,
        image=None,
        encoding=encoding,
    )


def _lang(tree: Any, meta: dict[str, str]) -> str | None:
    for raw in (
        tree.get("lang"),
        tree.get("xml:lang"),
        meta.get("og:locale"),
        meta.get("content-language"),
        meta.get("language"),
        meta.get("dc.language"),
    ):
        if raw:
            code = re.split(r"[-_,;\s]", raw.strip().lower())[0]
            if re.fullmatch(r"[a-z]{2,3}", code):
                return code[:2] if len(code) == 2 else code
    return None


def _cut(text: str, limit: int = LEAD_MAX) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.6 else cut).rstrip(" ,;:") + "…"


def _to_text(html: bytes | str, declared: str | None) -> tuple[str, str]:
    if isinstance(html, bytes):
        return decode_html(html[:MAX_HTML_BYTES], declared)
    return html[:MAX_HTML_BYTES], "utf-8"


def extract(
    html: bytes | str,
    url: str | None = None,
    *,
    declared_encoding: str | None = None,
    timezone: str | None = None,
) -> Extraction:
    """Extract one page. Never raises: unusable input yields empty title/text."""
    encoding = "utf-8"
    try:
        text, encoding = _to_text(html, declared_encoding)
        return _extract(text, encoding, url, timezone)
    except Exception:
        log.warning("extraction failed for %s", url, exc_info=True)
        return _empty(encoding)


def _parse(text: str) -> Any:
    # lxml refuses str input that carries an XML encoding declaration.
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1)
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return None


def _extract(text: str, encoding: str, url: str | None, tz: str | None) -> Extraction:
    tree = _parse(text)
    if tree is None:
        return _empty(encoding)
    meta = _meta(tree)
    ld = _json_ld_article(tree)
    sites = _site_names(meta, ld, url)

    h1s = [_norm_ws(h.text_content()) for h in tree.iter("h1")]
    h1s = [h for h in h1s if 2 <= len(h) <= 300]
    title_el = tree.find(".//title")
    page_title = _norm_ws(title_el.text_content()) if title_el is not None else ""
    title = _choose_title(
        [
            meta.get("og:title", ""),
            _ld_str(ld.get("headline")) or "",
            h1s[0] if h1s else "",
            meta.get("twitter:title", ""),
            page_title,
        ],
        sites,
    )

    lang_hint = _lang(tree, meta)
    visible = _norm_ws(" ".join(tree.xpath("//body//text()[not(ancestor::script)][not(ancestor::style)]")))
    chinese = (lang_hint or "").startswith("zh") or _cjk_share(title + visible[:3000]) > 0.3
    body = _body_text(text, url, chinese, 0 if chinese else _paragraph_words(tree), count_han(visible))

    description = _norm_ws(
        meta.get("og:description") or meta.get("description") or _ld_str(ld.get("description")) or ""
    )
    # The body often starts with the headline or a dateline; the lead is the first real paragraph.
    paras = [p for p in body.split("\n\n") if p and p != title]
    first_para = next((p for p in paras if len(p) >= 40 or (has_han(p) and len(p) >= 15)), "")
    lead = _cut(description if len(description) >= 40 else first_para or description)

    published, source = _published(ld, meta, tree, url, body, visible, tz)

    authors = _ld_names(ld.get("author")) if ld.get("author") else []
    if not authors:
        raw = meta.get("author") or meta.get("article:author") or meta.get("dc.creator") or ""
        if raw and not raw.startswith("http"):
            authors = [a.strip() for a in re.split(r"\s*(?:[,;/]| und | and |、)\s*", raw) if a.strip()]
    authors = list(dict.fromkeys(re.sub(r"^(von|by)\s+", "", a, flags=re.I) for a in authors))

    canonical = None
    for link in tree.iter("link"):
        if (link.get("rel") or "").lower().strip() == "canonical" and link.get("href"):
            canonical = link.get("href").strip()
            break
    canonical = canonical or meta.get("og:url")
    if canonical:
        canonical = urljoin(url, canonical) if url else canonical

    free = ld.get("isAccessibleForFree")
    has_part = ld.get("hasPart")
    if free is None and isinstance(has_part, dict):
        free = has_part.get("isAccessibleForFree")
    paywall = str(free).strip().lower() in {"false", "0", "no"} if free is not None else False
    paywall = paywall or meta.get("article:content_tier", "").lower() in {"locked", "metered"}

    image = meta.get("og:image") or meta.get("twitter:image") or _ld_str(ld.get("image"))
    if image and url:
        image = urljoin(url, image)

    visible_chars = len("".join(visible.split()))
    link_chars = len("".join("".join(tree.xpath("//body//a//text()")).split()))

    return Extraction(
        title=title,
        text=body,
        lead=lead,
        published=published,
        published_source=source,
        authors=authors,
        lang_hint=lang_hint,
        canonical_url=canonical,
        paywall=paywall,
        image=image,
        encoding=encoding,
        og_type=meta.get("og:type"),
        article_markup=bool(ld) or next(tree.iter("article"), None) is not None,
        link_density=link_chars / visible_chars if visible_chars else 0.0,
    )


def _published(
    ld: dict[str, Any],
    meta: dict[str, str],
    tree: Any,
    url: str | None,
    body: str,
    visible: str,
    tz: str | None,
) -> tuple[datetime | None, str]:
    """Structured data first, then markup, URL and finally the visible text."""
    for key in ("datePublished", "dateCreated", "uploadDate"):
        dt = parse_published(_ld_str(ld.get(key)), tz)
        if dt:
            return dt, "json-ld"
    for key in _META_DATE_KEYS:
        dt = parse_published(meta.get(key), tz)
        if dt:
            return dt, "meta"
    time_xpath = '//time[@datetime][@itemprop="datePublished" or @pubdate]|//*[@itemprop="datePublished"]'
    for el in tree.xpath(time_xpath):
        dt = parse_published(el.get("datetime") or el.get("content") or el.text_content(), tz)
        if dt:
            return dt, "meta"
    if url:
        m = _URL_DATE.search(urlsplit(url).path)
        if m:
            dt = make_datetime(m.group(1), m.group(2), m.group(3), None, None, None)
            if dt:
                return dt.replace(tzinfo=zone(tz)), "url"
    dt = _htmldate(tree, url, tz)
    if dt:
        return dt, "meta"
    dt = _date_in_text(visible[:30000], tz, need_time=True)
    if dt:
        return dt, "text"
    dt = _date_in_text(visible[:30000], tz, need_time=False)
    if dt:
        return dt, "text"
    return None, "unknown"
