"""Hybrid search: BM25 over original and translated text plus kNN over the query's embedding, fused
with reciprocal-rank fusion — by the server's RRF retriever where the node has it, else in the client
(the local node has none).

kNN is what lets an English query find Chinese and German coverage: the multilingual embedding puts
the same story close together whatever the language. BM25 keeps exact names and phrases on top.

Results are one per story by default (the best-ranked article stands for its story and says how many
more outlets and languages covered it). Paging: where Elasticsearch ranks alone (filters only,
BM25-only, or `--no-collapse` by recency) the cursor carries `search_after` sort values, or an offset
when collapsing (Elasticsearch allows `search_after` with collapse only when sorting by the collapse
field); fused rankings page by offset within the fusion window.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch

from enrich.embed import Embedder
from index.capabilities import Capabilities, detect
from index.mapping import articles_alias, language_subfields
from index.query import TEXT_FIELDS, ParsedQuery, parse, to_es
from index.understand import Boosts, understand, understood_query
from newsradar.dates import parse_iso_or_none
from newsradar.settings import Settings

RRF_K = 60
HL_START, HL_END = "\ue000", "\ue001"  # private-use marks: escaped views turn them into <mark>
MAX_WINDOW = 1000
SOURCE_FIELDS = [
    "id",
    "url",
    "canonical_url",
    "title",
    "title_en",
    "lead",
    "lead_en",
    "lang",
    "story_id",
    "event_types",
    "entities",
    "published_at",
    "source",
    "country",
    "paywall",
    "story_size",
    "story_sources",
    "story_langs",
]
FACETS = {
    "lang": "lang",
    "source": "source",
    "country": "country",
    "event": "event_types",
    "entity": "entities",
    "paywall": "paywall",
}

Sort = Literal["relevance", "recency"]
Mode = Literal["hybrid", "bm25", "knn"]


@dataclass
class SearchRequest:
    query: str = ""
    langs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    paywall: bool | None = None
    collapse: bool = True
    sort: Sort = "relevance"
    limit: int = 10
    cursor: str | None = None
    facets: bool = False
    highlight: bool = True
    mode: Mode = "hybrid"


@dataclass
class Hit:
    id: str
    url: str
    title: str
    lang: str | None
    score: float
    story_id: str | None
    event_types: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    published_at: str | None = None
    source: str | None = None
    country: str | None = None
    title_en: str | None = None
    lead: str = ""
    lead_en: str | None = None
    paywall: bool = False
    story_size: int = 1
    story_sources: list[str] = field(default_factory=list)
    story_langs: list[str] = field(default_factory=list)
    highlights: dict[str, list[str]] = field(default_factory=dict)  # with HL_START/HL_END marks

    @property
    def more_outlets(self) -> int:
        """Other outlets covering the same story."""
        return len([s for s in self.story_sources if s != self.source])

    @property
    def more_articles(self) -> int:
        return max(0, self.story_size - 1)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "lang": self.lang,
            "score": round(self.score, 6),
            "story_id": self.story_id,
            "event_types": self.event_types,
            "entities": self.entities,
            "published_at": self.published_at,
            "title_en": self.title_en,
            "source": self.source,
            "country": self.country,
            "story_size": self.story_size,
            "story_langs": self.story_langs,
            "more_outlets": self.more_outlets,
        }


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int
    total_exact: bool
    next_cursor: str | None
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    mode: str = "hybrid"
    query: str = ""  # how the query was understood
    less_related: list[Hit] = field(default_factory=list)


@dataclass(frozen=True)
class Tuning:
    """The knobs of relevance, chosen on the dev queries (`python -m bench.search_dev`)."""

    rrf_k: int = RRF_K
    bm25_weight: float = 1.0
    knn_weight: float = 1.0
    expand: bool = True  # read the query across languages (index.understand)
    boosts: Boosts = Boosts()
    floor: float = 0.0  # cosine under which a kNN-only hit without a query entity is "less related"


TUNED = Tuning()


def rrf(
    rankings: list[list[str]], k: int = RRF_K, weights: list[float] | None = None
) -> dict[str, float]:
    """Reciprocal-rank fusion (weighted): robust to the incomparable score scales of BM25 and cosine."""
    scores: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        weight = weights[i] if weights else 1.0
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    return scores


_CAPS: dict[str, Capabilities] = {}


def capabilities(client: Elasticsearch, settings: Settings) -> Capabilities:
    """Detected once per node URL and process: it only changes when the node is replaced."""
    if settings.es_url not in _CAPS:
        _CAPS[settings.es_url] = detect(client)
    return _CAPS[settings.es_url]


def text_fields(caps: Capabilities) -> list[str]:
    """The standard-analysed fields plus the language sub-fields this node's mapping has."""
    subs = language_subfields(caps)
    out = list(TEXT_FIELDS)
    for spec in TEXT_FIELDS:
        name, _, boost = spec.partition("^")
        out.extend(f"{name}.{sub}" + (f"^{boost}" if boost else "") for sub in subs)
    return out


def request_filters(request: SearchRequest) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    for name, values, lower in (
        ("lang", request.langs, True),
        ("source", request.sources, False),
        ("country", [c.upper() for c in request.countries], False),
        ("event_types", request.event_types, True),
    ):
        if values:
            filters.append({"terms": {name: [v.lower() for v in values] if lower else values}})
    for entity in request.entities:  # every named entity must be present
        filters.append({"term": {"entities": {"value": entity, "case_insensitive": True}}})
    if request.since or request.until:
        bounds = {}
        if request.since:
            bounds["gte"] = request.since.isoformat()
        if request.until:
            bounds["lt"] = request.until.isoformat()
        filters.append({"range": {"published_at": bounds}})
    if request.paywall is not None:
        filters.append({"term": {"paywall": request.paywall}})
    return filters


def _cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _read_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise ValueError("invalid page cursor; start again from the first page") from None
    if not isinstance(data, dict) or not ({"o", "a"} & set(data)):
        raise ValueError("invalid page cursor; start again from the first page")
    return data


def _hit(doc_id: str, src: dict[str, Any], score: float, highlight: dict[str, list[str]] | None) -> Hit:
    return Hit(
        id=doc_id,
        url=src.get("canonical_url") or src.get("url", ""),
        title=src.get("title", ""),
        lang=src.get("lang"),
        score=score,
        story_id=src.get("story_id"),
        event_types=src.get("event_types") or [],
        entities=src.get("entities") or [],
        published_at=src.get("published_at"),
        source=src.get("source"),
        country=src.get("country"),
        title_en=src.get("title_en"),
        lead=src.get("lead") or "",
        lead_en=src.get("lead_en"),
        paywall=bool(src.get("paywall")),
        story_size=int(src.get("story_size") or 1),
        story_sources=src.get("story_sources") or [],
        story_langs=src.get("story_langs") or [],
        highlights=highlight or {},
    )


def _when(value: str | None) -> datetime:
    """Publication time for sorting in the client (ISO strings with offsets do not sort as text)."""
    return parse_iso_or_none(value) or datetime.min.replace(tzinfo=UTC)


def _aggs() -> dict[str, Any]:
    aggs: dict[str, Any] = {name: {"terms": {"field": f, "size": 15}} for name, f in FACETS.items()}
    aggs["stories"] = {"cardinality": {"field": "story_id"}}
    return aggs


def _facets(response: Any) -> dict[str, list[tuple[str, int]]]:
    aggs = response.get("aggregations", {})
    out: dict[str, list[tuple[str, int]]] = {}
    for name in FACETS:
        buckets = aggs.get(name, {}).get("buckets", [])
        out[name] = [(str(b.get("key_as_string", b["key"])), int(b["doc_count"])) for b in buckets]
    return out


def _highlight(fields: list[str]) -> dict[str, Any]:
    spec = {"number_of_fragments": 2, "fragment_size": 160}
    return {
        "pre_tags": [HL_START],
        "post_tags": [HL_END],
        "require_field_match": False,
        "fields": {
            "title": {"number_of_fragments": 0},
            "title_en": {"number_of_fragments": 0},
            "lead": spec,
            "lead_en": spec,
            "text": spec,
            "text_en": spec,
        },
    }


def search_articles(
    client: Elasticsearch,
    settings: Settings,
    request: SearchRequest,
    embedder: Embedder | None,
    tuning: Tuning = TUNED,
) -> SearchResult:
    """Run one search request; raises ValueError for a bad cursor, never for query syntax."""
    alias = articles_alias(settings)
    parsed = parse(request.query)
    if not client.indices.exists_alias(name=alias):
        return SearchResult([], 0, True, None, warnings=[*parsed.warnings, f"no index yet ({alias})"])
    caps = capabilities(client, settings)
    fields = text_fields(caps)
    filters = request_filters(request)

    def expand(text: str) -> dict[str, Any] | None:
        return understood_query(understand(text), fields, tuning.boosts)

    query = {"bool": {"must": [to_es(parsed, fields, expand if tuning.expand else None)], "filter": filters}}
    page = _read_cursor(request.cursor)
    mode: Mode = request.mode
    if mode != "bm25" and (embedder is None or not parsed.has_text()):
        mode = "bm25"
    if mode == "bm25":
        result = _native(client, alias, request, parsed, query, fields, page)
    else:
        assert embedder is not None
        result = _fused(
            client, settings, caps, alias, request, parsed, query, filters, fields, page, embedder, tuning
        )
    result.warnings = parsed.warnings + result.warnings
    result.query = str(parsed)
    return result


def _native(
    client: Elasticsearch,
    alias: str,
    request: SearchRequest,
    parsed: ParsedQuery,
    query: dict[str, Any],
    fields: list[str],
    page: dict[str, Any],
) -> SearchResult:
    """Elasticsearch ranks alone: BM25 (or filters only), native collapse, sort and paging."""
    relevance = request.sort == "relevance" and parsed.has_text()
    sort: list[Any] = (
        ["_score", {"id": "asc"}]
        if relevance
        else [{"published_at": {"order": "desc", "missing": "_last"}}, {"id": "asc"}]
    )
    body: dict[str, Any] = {
        "index": alias,
        "query": query,
        "size": request.limit,
        "sort": sort,
        "source_includes": SOURCE_FIELDS,
        "track_total_hits": True,
    }
    offset = int(page.get("o", 0))
    if request.collapse:
        body["collapse"] = {"field": "story_id"}
        body["from"] = offset
    elif page.get("a"):
        body["search_after"] = page["a"]
    if request.facets or request.collapse:
        body["aggs"] = _aggs() if request.facets else {"stories": {"cardinality": {"field": "story_id"}}}
    if request.highlight and parsed.has_text():
        body["highlight"] = _highlight(fields)
    response = client.search(**body)
    raw = response["hits"]["hits"]
    hits = [_hit(h["_id"], h["_source"], float(h.get("_score") or 0.0), h.get("highlight")) for h in raw]
    total = int(response["hits"]["total"]["value"])
    if request.collapse:
        total = int(response["aggregations"]["stories"]["value"])  # approximate above 3000 stories
    more = len(raw) == request.limit and (offset + len(raw) < total if request.collapse else True)
    cursor = None
    if more and raw:
        cursor = _cursor({"o": offset + len(raw)}) if request.collapse else _cursor({"a": raw[-1]["sort"]})
    facets = _facets(response) if request.facets else {}
    return SearchResult(hits, total, not request.collapse, cursor, facets, mode="bm25")


def _fused(
    client: Elasticsearch,
    settings: Settings,
    caps: Capabilities,
    alias: str,
    request: SearchRequest,
    parsed: ParsedQuery,
    query: dict[str, Any],
    filters: list[dict[str, Any]],
    fields: list[str],
    page: dict[str, Any],
    embedder: Embedder,
    tuning: Tuning,
) -> SearchResult:
    offset = int(page.get("o", 0))
    window = min(MAX_WINDOW, max(100, (offset + request.limit) * 4))
    vector = [float(x) for x in embedder.queries([parsed.embedding_text()])[0]]
    knn: dict[str, Any] = {
        "field": "embedding",
        "query_vector": vector,
        "k": window,
        "num_candidates": min(10000, max(window * 2, 200)),
        "filter": filters + parsed.constraints(),
    }
    if settings.search_knn_similarity > 0:
        knn["similarity"] = settings.search_knn_similarity
    highlight = _highlight(fields) if request.highlight else None
    sources: dict[str, dict[str, Any]] = {}
    highlights: dict[str, dict[str, list[str]]] = {}
    warnings: list[str] = []
    full = False
    if request.mode == "hybrid" and caps.rrf:
        response = client.search(
            index=alias,
            size=window,
            source_includes=SOURCE_FIELDS,
            highlight=highlight,
            retriever={
                "rrf": {
                    "retrievers": [{"standard": {"query": query}}, {"knn": knn}],
                    "rank_window_size": window,
                    "rank_constant": RRF_K,
                }
            },
        )
        hits = response["hits"]["hits"]
        fused = [(h["_id"], float(h.get("_score") or 0.0)) for h in hits]
        for h in hits:
            sources[h["_id"]] = h["_source"]
            highlights[h["_id"]] = h.get("highlight", {})
        full = len(hits) >= window
    else:
        rankings: list[list[str]] = []
        if request.mode == "hybrid":
            bm25 = client.search(
                index=alias, size=window, query=query, source_includes=SOURCE_FIELDS, highlight=highlight
            )["hits"]["hits"]
            for h in bm25:
                sources[h["_id"]] = h["_source"]
                highlights[h["_id"]] = h.get("highlight", {})
            rankings.append([h["_id"] for h in bm25])
            full = len(bm25) >= window
        near = client.search(index=alias, size=window, knn=knn, source_includes=SOURCE_FIELDS)["hits"]["hits"]
        for h in near:
            sources.setdefault(h["_id"], h["_source"])
        rankings.append([h["_id"] for h in near])
        full = full or len(near) >= window
        weights = [tuning.bm25_weight, tuning.knn_weight] if request.mode == "hybrid" else [1.0]
        fused = sorted(
            rrf(rankings, tuning.rrf_k, weights).items(), key=lambda item: (-item[1], item[0])
        )
    if request.sort == "recency":
        fused.sort(key=lambda item: _when(sources[item[0]].get("published_at")), reverse=True)
    if request.collapse:
        seen: set[str] = set()
        kept = []
        for doc_id, score in fused:
            story = sources[doc_id].get("story_id") or doc_id
            if story not in seen:
                seen.add(story)
                kept.append((doc_id, score))
        fused = kept
    chosen = fused[offset : offset + request.limit]
    hits_out = [_hit(doc_id, sources[doc_id], score, highlights.get(doc_id)) for doc_id, score in chosen]
    cursor = _cursor({"o": offset + len(chosen)}) if offset + len(chosen) < len(fused) else None
    if cursor is None and full:
        warnings.append(f"results are limited to the best {window} candidates of each retriever")
    facets: dict[str, list[tuple[str, int]]] = {}
    if request.facets:
        aggs_query = query if request.mode == "hybrid" else {"bool": {"filter": filters}}
        response = client.search(index=alias, size=0, query=aggs_query, knn=knn, aggs=_aggs())
        facets = _facets(response)
    return SearchResult(hits_out, len(fused), not full, cursor, facets, warnings, mode=request.mode)


def search(
    client: Elasticsearch,
    settings: Settings,
    query: str,
    embedder: Embedder | None,
    *,
    lang: str | None = None,
    limit: int = 10,
    collapse: bool = True,
) -> list[Hit]:
    """Shorthand for the common case: hybrid, best first, one hit per story."""
    request = SearchRequest(query=query, langs=[lang] if lang else [], limit=limit, collapse=collapse)
    return search_articles(client, settings, request, embedder).hits


def get_story(
    client: Elasticsearch, settings: Settings, story_id: str, limit: int = 500
) -> dict[str, Any] | None:
    """Every article of a story, oldest first, with the story's timeline (first report, when each
    language joined, articles per day and language)."""
    alias = articles_alias(settings)
    if not client.indices.exists_alias(name=alias):
        return None
    response = client.search(
        index=alias,
        size=limit,
        query={"term": {"story_id": story_id}},
        sort=[{"published_at": {"order": "asc", "missing": "_last"}}, {"id": "asc"}],
        source_excludes=["embedding"],
    )
    articles = [h["_source"] for h in response["hits"]["hits"]]
    if not articles:
        return None
    langs: dict[str, dict[str, Any]] = {}
    days: dict[str, dict[str, int]] = {}
    for doc in articles:
        when = doc.get("published_at") or doc.get("first_seen_at") or ""
        lang = doc.get("lang") or "unknown"
        entry = langs.setdefault(lang, {"lang": lang, "first_at": when, "articles": 0, "sources": []})
        entry["articles"] += 1
        if doc.get("source") not in entry["sources"]:
            entry["sources"].append(doc.get("source"))
        day = days.setdefault(when[:10] or "unknown", {})
        day[lang] = day.get(lang, 0) + 1
    first = articles[0]
    return {
        "story_id": story_id,
        "size": len(articles),
        "sources": sorted({a["source"] for a in articles if a.get("source")}),
        "langs": sorted(langs),
        "first_report": {
            k: first.get(k) for k in ("id", "title", "title_en", "source", "lang", "published_at")
        },
        "timeline": {
            "languages": sorted(langs.values(), key=lambda e: e["first_at"]),
            "days": [{"date": d, "langs": days[d]} for d in sorted(days)],
        },
        "articles": articles,
    }
