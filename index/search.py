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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from elasticsearch import ApiError, BadRequestError, Elasticsearch

from enrich.embed import Embedder
from index.capabilities import Capabilities, detect
from index.mapping import articles_alias, language_subfields
from index.query import TEXT_FIELDS, ParsedQuery, parse, to_es
from index.rerank import Reranker, reranker
from index.rerank import candidates as rerank_candidates
from index.space import language_space
from index.story_facts import facts_search, read_facts
from index.understand import Boosts, Understanding, understand, understood_query
from newsradar.dates import parse_iso_or_none
from newsradar.settings import Settings
from newsradar.text import has_han

RRF_K = 60
HL_START, HL_END = "\ue000", "\ue001"  # private-use marks: escaped views turn them into <mark>
MAX_WINDOW = 1000
# Candidates of each retriever for the first pages of a hybrid search. On the dev queries 100 left 17 % of
# the judged-relevant articles outside both windows (mostly other-language coverage); 200 left 7 %.
CANDIDATES = 200
MAX_ANALYZED_OFFSET = 100_000  # characters of a field analysed for highlighting (index limit 1,000,000)
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
    "event_scores",
    "entities",
    "published_at",
    "source",
    "country",
    "paywall",
    "translation_backend",
    "translation_status",
]
#: translation_status values that mean a machine-translation backend produced `title_en`
TRANSLATED = ("translated", "cached")
MAX_OFFSET = 10_000  # Elasticsearch's result window: a cursor never points past it
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
    explain: bool = False  # hybrid: return the re-ranker's features of every candidate


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
    translation_backend: str | None = None
    translation_status: str | None = None
    headline: str | None = None  # the story's title in the analyst's language, from another article
    headline_lang: str | None = None

    @property
    def translation(self) -> str | None:
        """The English title only when a translation backend made one (a glossary copy or the
        untranslated original is no translation) and it differs from the original."""
        if self.translation_status not in TRANSLATED or not self.title_en:
            return None
        return self.title_en if self.title_en.strip() != self.title.strip() else None

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
    lang: str | None = None  # the language the analyst typed in (de, en, zh), when the query says
    features: dict[str, dict[str, float]] = field(default_factory=dict)  # per candidate, with explain


@dataclass(frozen=True)
class Tuning:
    """The knobs of relevance, chosen on the dev queries (`python -m bench.search_dev`)."""

    rrf_k: int = RRF_K
    bm25_weight: float = 1.0
    knn_weight: float = 1.0
    expand: bool = True  # read the query across languages (index.understand)
    boosts: Boosts = field(default_factory=Boosts)
    floor: float = 0.0  # cosine under which a kNN-only hit without a query entity is "less related"
    centred_floor: float = 0.0  # the same on the centred cosine's scale (index.space), when it is used
    recency: float = 0.0  # weight of a newest-first ranking fused with the others
    multilingual: bool = True  # kNN with the query's vector averaged over its de/en/zh renderings
    centre: bool = True  # kNN re-scored by cosine without the language means (index.space)
    rerank: bool = True  # hybrid ranked by the learned re-ranker (index.rerank) where it fits the model
    ranker: Reranker | None = None  # this re-ranker instead of index/reranker.json (training)


# Chosen on the 102 dev queries (bench/search_dev.py; held-out queries never used): a small k lets the
# top of each list decide, BM25 (now cross-language) weighs half again as much as kNN, and kNN-only
# hits below cosine 0.90 without the query's named entity follow as "less related" — 0.30 on the scale
# of the centred cosine (index.space), where unrelated news sits near 0 and the same story 0.4-0.7.
TUNED = Tuning(rrf_k=5, bm25_weight=1.5, floor=0.90, centred_floor=0.30)


def rrf(rankings: list[list[str]], k: int = RRF_K, weights: list[float] | None = None) -> dict[str, float]:
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
    """A page cursor back; ValueError (a 400 for the API) for anything this module did not write."""
    if not cursor:
        return {}
    bad = ValueError("invalid page cursor; start again from the first page")
    if len(cursor) > 2000:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise bad from None
    if not isinstance(data, dict) or not ({"o", "a"} & set(data)):
        raise bad
    offset = data.get("o", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise bad
    after = data.get("a")
    if after is not None and (
        not isinstance(after, list)
        or not 1 <= len(after) <= 4
        or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in after)
    ):
        raise bad
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
        story_sources=[src["source"]] if src.get("source") else [],  # a story of one until counted
        story_langs=[src["lang"]] if src.get("lang") else [],
        highlights=highlight or {},
        translation_backend=src.get("translation_backend"),
        translation_status=src.get("translation_status"),
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
        # Only the start of a long text is analysed for highlighting: a multi-megabyte article is
        # still found and shown (its first pages highlighted) instead of failing the whole search.
        "max_analyzed_offset": MAX_ANALYZED_OFFSET,
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
    if int(page.get("o", 0)) + request.limit > MAX_OFFSET:
        raise ValueError(f"pages end at result {MAX_OFFSET:,}; narrow the search instead")
    mode: Mode = request.mode
    if mode != "bm25" and (embedder is None or not parsed.has_text()):
        mode = "bm25"
    try:
        if mode == "bm25":
            result = _native(client, alias, request, parsed, query, fields, page)
        else:
            assert embedder is not None
            result = _fused(
                client, settings, caps, alias, request, parsed, query, filters, fields, page, embedder, tuning
            )
    except BadRequestError as error:  # what the node refuses to run is the request's fault (a 400)
        raise ValueError(f"this search cannot be run: {error.message}") from None
    result.warnings = parsed.warnings + result.warnings
    result.query = str(parsed)
    result.lang = analyst_language(parsed)
    shown = [*result.hits, *result.less_related]
    warning = story_context(client, alias, shown, result.lang if request.collapse else None)
    if warning:
        result.warnings.append(warning)
    return result


def analyst_language(parsed: ParsedQuery) -> str | None:
    """The language the query is written in; None for names alone (DeepSeek, H20) or no text."""
    from enrich.language import detect_language

    text = parsed.embedding_text()
    if not text:
        return None
    if has_han(text):
        return "zh"
    words = [u for u in understand(text).units if u.kind != "entity"]
    if not words:
        return None
    lang = detect_language(text)
    return lang if lang in ("de", "en") else None


def story_context(client: Elasticsearch, alias: str, hits: list[Hit], lang: str | None) -> str | None:
    """Each hit's story facts (`index.story_facts`) and, for a hit whose article is not in the
    analyst's language ``lang``, the story's own title in that language (its earliest article in it),
    in one round trip. Returns a warning when the node could not answer a part."""
    ids = sorted({h.story_id for h in hits if h.story_id})
    if not ids:
        return None
    searches: list[dict[str, Any]] = [{"index": alias}, facts_search(ids)]
    foreign = sorted({h.story_id for h in hits if h.story_id and lang and h.lang != lang})
    if foreign:
        searches += [
            {"index": alias},
            {
                "size": len(foreign),
                "query": {"bool": {"filter": [{"terms": {"story_id": foreign}}, {"term": {"lang": lang}}]}},
                "collapse": {"field": "story_id"},
                "sort": [{"published_at": {"order": "asc", "missing": "_last"}}, {"id": "asc"}],
                "_source": ["story_id", "title"],
            },
        ]
    responses = client.msearch(searches=searches)["responses"]
    errors = [str(r["error"].get("reason") or r["error"]) for r in responses if "error" in r]
    facts = read_facts(responses[0]) if "error" not in responses[0] else {}
    titles: dict[str, str] = {}
    if foreign and "error" not in responses[1]:
        titles = {h["_source"]["story_id"]: h["_source"]["title"] for h in responses[1]["hits"]["hits"]}
    for hit in hits:
        story = facts.get(hit.story_id or "")
        if story is not None:
            hit.story_size, hit.story_sources, hit.story_langs = story.size, story.sources, story.langs
        if lang and hit.lang != lang and hit.story_id in titles:
            hit.headline, hit.headline_lang = titles[hit.story_id], lang
    return f"story facts incomplete: {errors[0]}" if errors else None


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
    if page and (("o" in page) != request.collapse or ("a" in page) == request.collapse):
        raise ValueError("invalid page cursor for this search; start again from the first page")
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
    """Hybrid (or kNN-only) ranking. The BM25 request runs while the query is embedded; the kNN
    request follows; the lists are fused by weighted reciprocal-rank fusion — on the server where the
    node's modules and licence allow the `rrf` retriever, else here. Hits that match neither the
    query's entities, nor its words (BM25), nor its meaning above the floor (cosine) follow as
    "less related". Highlights are fetched for the page's hits only."""
    if page and "o" not in page:
        raise ValueError("invalid page cursor for this search; start again from the first page")
    offset = int(page.get("o", 0))
    window = min(MAX_WINDOW, max(CANDIDATES, (offset + request.limit) * 4))
    hybrid = request.mode == "hybrid"
    reading = understand(parsed.embedding_text()) if tuning.expand else None
    entities: set[str] = set()
    if reading is not None:  # named things if the query has any, else its places
        anchors = {u.key for u in reading.units if u.kind == "entity" and u.anchor}
        parents = {u.parent for u in reading.units if u.anchor and u.parent}
        entities = (anchors | parents) if anchors else set(reading.entities)
    sources: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    cosine: dict[str, float] = {}
    lexical: set[str] = set()
    rankings: list[list[str]] = []
    weights: list[float] = []
    fused: list[tuple[str, float]] | None = None
    explained: dict[str, dict[str, float]] = {}
    # The node's rrf retriever cannot re-score without the language means: with them, fuse here.
    space = language_space(embedder.name) if tuning.centre else None
    server = caps.rrf and space is None
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        if hybrid and not server:
            pending = pool.submit(
                client.search, index=alias, size=window, query=query, source_includes=SOURCE_FIELDS
            )
        vector = query_vector(embedder, parsed.embedding_text(), reading if tuning.multilingual else None)
        if space is not None:
            vector = space.query(vector)
        knn: dict[str, Any] = {
            "field": "embedding",
            "query_vector": vector,
            "k": window,
            "num_candidates": min(10000, max(window * 2, 200)),
            "filter": filters + parsed.constraints(),
        }
        if settings.search_knn_similarity > 0 and space is None:  # else on the centred cosine, below
            knn["similarity"] = settings.search_knn_similarity
        if hybrid and server:
            fused = _server_rrf(client, settings, alias, query, knn, window, tuning, sources)
            if fused is None:  # refused (licence): fuse here from now on
                pending = pool.submit(
                    client.search, index=alias, size=window, query=query, source_includes=SOURCE_FIELDS
                )
        if fused is None:
            near = client.search(index=alias, size=window, knn=knn, source_includes=SOURCE_FIELDS)["hits"][
                "hits"
            ]
            bm25 = pending.result()["hits"]["hits"] if pending is not None else []
    full = False
    if fused is None:
        for h in bm25:
            sources[h["_id"]] = h["_source"]
        lexical = {h["_id"] for h in bm25}
        if hybrid:
            rankings.append([h["_id"] for h in bm25])
            weights.append(tuning.bm25_weight)
        for h in near:
            sources.setdefault(h["_id"], h["_source"])
            cosine[h["_id"]] = 2.0 * float(h.get("_score") or 0.0) - 1.0
        if space is not None:
            cosine = space.rescore(
                client, alias, vector, [(h["_id"], h["_source"].get("lang"), cosine[h["_id"]]) for h in near]
            )
            if settings.search_knn_similarity > 0:
                near = [h for h in near if cosine[h["_id"]] >= settings.search_knn_similarity]
                cosine = {h["_id"]: cosine[h["_id"]] for h in near}
            near = sorted(near, key=lambda h: (-cosine[h["_id"]], h["_id"]))
        rankings.append([h["_id"] for h in near])
        weights.append(tuning.knn_weight if hybrid else 1.0)
        if tuning.recency > 0:
            by_date = sorted(sources, key=lambda d: _when(sources[d].get("published_at")), reverse=True)
            rankings.append(by_date)
            weights.append(tuning.recency)
        full = len(bm25) >= window or len(near) >= window
        ranker = (tuning.ranker or reranker(embedder.name)) if tuning.rerank else None
        if hybrid and space is not None and reading is not None and (ranker or request.explain):
            explained = rerank_candidates(
                reading, sources, [(h["_id"], float(h.get("_score") or 0.0)) for h in bm25], cosine
            )
        if hybrid and space is not None and ranker is not None and explained:
            scored = ((doc_id, ranker.score(values)) for doc_id, values in explained.items())
            fused = sorted(scored, key=lambda item: (-item[1], item[0]))
        else:
            fused = sorted(rrf(rankings, tuning.rrf_k, weights).items(), key=lambda item: (-item[1], item[0]))
    else:
        full = len(fused) >= window
    if request.sort == "recency":
        fused.sort(key=lambda item: _when(sources[item[0]].get("published_at")), reverse=True)

    floor = tuning.centred_floor if space is not None else tuning.floor

    def related(doc_id: str) -> bool:
        if floor <= 0 or doc_id in lexical or not cosine:
            return True
        if entities & set(sources[doc_id].get("entities") or []):
            return True
        return cosine.get(doc_id, -1.0) >= floor

    close = [item for item in fused if related(item[0])]
    far = [item for item in fused if not related(item[0])]
    if request.collapse:
        close, far = _one_per_story(close, sources), _one_per_story(far, sources)
        shown = {sources[d].get("story_id") or d for d, _ in close}
        far = [(d, s) for d, s in far if (sources[d].get("story_id") or d) not in shown]
    chosen = close[offset : offset + request.limit]
    cursor = _cursor({"o": offset + len(chosen)}) if offset + len(chosen) < len(close) else None
    extra = far[: request.limit] if cursor is None else []
    marks = (
        _page_highlights(client, alias, query, fields, [d for d, _ in chosen + extra])
        if (request.highlight and parsed.has_text())
        else {}
    )
    hits_out = [_hit(d, sources[d], score, marks.get(d)) for d, score in chosen]
    less = [_hit(d, sources[d], score, marks.get(d)) for d, score in extra]
    if cursor is None and full:
        warnings.append(f"results are limited to the best {window} candidates of each retriever")
    facets: dict[str, list[tuple[str, int]]] = {}
    if request.facets:
        aggs_query = query if hybrid else {"bool": {"filter": filters}}
        response = client.search(index=alias, size=0, query=aggs_query, knn=knn, aggs=_aggs())
        facets = _facets(response)
    return SearchResult(
        hits_out,
        len(close),
        not full,
        cursor,
        facets,
        warnings,
        mode=request.mode,
        less_related=less,
        features=explained if request.explain else {},
    )


def query_vector(embedder: Embedder, text: str, reading: Understanding | None) -> list[float]:
    """The query's embedding; with a reading, the mean of the query and its renderings in the other
    languages (one batch), which evens out the embedding's pull towards the typed language."""
    texts = [text]
    if reading is not None and reading.units:
        texts += [t for t in (reading.render(lang) for lang in ("en", "de", "zh")) if t]
    texts = list(dict.fromkeys(texts))  # a rendering that is the query, or another rendering: once
    vectors = np.asarray(embedder.queries(texts), dtype=np.float32)
    mean = vectors.mean(axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    return [float(x) for x in mean]


def _one_per_story(
    items: list[tuple[str, float]], sources: dict[str, dict[str, Any]]
) -> list[tuple[str, float]]:
    seen: set[str] = set()
    kept = []
    for doc_id, score in items:
        story = sources[doc_id].get("story_id") or doc_id
        if story not in seen:
            seen.add(story)
            kept.append((doc_id, score))
    return kept


def _page_highlights(
    client: Elasticsearch, alias: str, query: dict[str, Any], fields: list[str], ids: list[str]
) -> dict[str, dict[str, list[str]]]:
    """Highlights of the shown hits only: one small request instead of highlighting every candidate."""
    if not ids:
        return {}
    response = client.search(
        index=alias,
        size=len(ids),
        query={"bool": {"should": [query], "filter": [{"ids": {"values": ids}}]}},
        source=False,
        highlight=_highlight(fields),
    )
    return {h["_id"]: h.get("highlight", {}) for h in response["hits"]["hits"]}


_RRF_REFUSED: set[str] = set()


def _server_rrf(
    client: Elasticsearch,
    settings: Settings,
    alias: str,
    query: dict[str, Any],
    knn: dict[str, Any],
    window: int,
    tuning: Tuning,
    sources: dict[str, dict[str, Any]],
) -> list[tuple[str, float]] | None:
    """Fusion by the node's `rrf` retriever (weighted); None when the node refuses it (a licence that
    does not cover it, an older node), remembered per node so the client fuses from then on."""
    if settings.es_url in _RRF_REFUSED:
        return None
    try:
        response = client.search(
            index=alias,
            size=window,
            source_includes=SOURCE_FIELDS,
            retriever={
                "rrf": {
                    "retrievers": [
                        {"retriever": {"standard": {"query": query}}, "weight": tuning.bm25_weight},
                        {"retriever": {"knn": knn}, "weight": tuning.knn_weight},
                    ],
                    "rank_window_size": window,
                    "rank_constant": tuning.rrf_k,
                }
            },
        )
    except ApiError as error:
        if error.meta.status in (400, 403):
            _RRF_REFUSED.add(settings.es_url)
            return None
        raise
    hits = response["hits"]["hits"]
    for h in hits:
        sources[h["_id"]] = h["_source"]
    return [(h["_id"], float(h.get("_score") or 0.0)) for h in hits]


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
