"""Rule evaluation: which stories are new for a rule, and which alerts that makes.

Semantics (see docs/alerts.md):

* the window is every article *indexed* since the rule's watermark minus an overlap
  (``alerts_overlap_s``): ``indexed_at`` is when an article became searchable, so an article
  fetched hours ago but enriched late is still seen (``published_at`` plays no part);
* a story is a candidate when one of its articles is in the window, and it matches when one of its
  articles matches the rule; corroboration (outlets, languages) counts the whole story;
* one alert per (rule, story) under a deterministic id created with ``op_type=create``: overlapping
  windows, reruns and parallel evaluators cannot make a second one;
* an alerted story that later gains a language, a country or reaches corroboration gets at most
  one update alert (same mechanism, its own id).
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from alerts.message import Link, Message, StorySummary
from alerts.rules import Rule
from alerts.state import create_once, ensure_state_indices, get_doc, stable_id
from index.mapping import alert_state_index, articles_alias
from newsradar.dates import iso, parse_iso
from newsradar.settings import Settings

ARTICLE_FIELDS = [
    "id",
    "url",
    "canonical_url",
    "source",
    "country",
    "lang",
    "title",
    "title_en",
    "lead",
    "lead_en",
    "event_types",
    "event_type",
    "entities",
    "story_id",
    "translation_status",
    "translation_backend",
    "published_at",
    "first_seen_at",
    "indexed_at",
]
TEXT_FIELDS = ["title^3", "title_en^3", "lead^2", "lead_en^2", "text"]
_TERMS_CHUNK = 5000
_LOOSE = "article:"  # story key of an article that has no story yet


def text_query(text: str) -> dict[str, Any]:
    """The one place the rule's ``query`` becomes Elasticsearch: the search syntax of
    ``newsradar search`` (``index/query.py``) when present, else ``simple_query_string``."""
    try:
        syntax = importlib.import_module("index.query")
    except ImportError:
        syntax = None
    if syntax is not None and hasattr(syntax, "parse") and hasattr(syntax, "to_es"):
        query: dict[str, Any] = syntax.to_es(syntax.parse(text))
        return query
    return {"simple_query_string": {"query": text, "fields": TEXT_FIELDS, "default_operator": "and"}}


def rule_query(rule: Rule) -> dict[str, Any]:
    """Article-level match of a rule: its query plus term filters (any of each list)."""
    filters: list[dict[str, Any]] = []
    if rule.ai_only:
        filters.append({"term": {"ai_related": True}})
    if rule.event_types:
        filters.append({"terms": {"event_types": list(rule.event_types)}})
        confident = [
            {"range": {f"event_scores.{kind}": {"gte": rule.min_confidence}}} for kind in rule.event_types
        ]
        filters.append({"bool": {"should": confident, "minimum_should_match": 1}})
    if rule.entities:
        filters.append(entity_filter(rule.entities))
    if rule.languages:
        filters.append({"terms": {"lang": list(rule.languages)}})
    if rule.sources:
        filters.append({"terms": {"source": rule.sources}})
    must = [text_query(rule.query)] if rule.query.strip() else []
    return {"bool": {"must": must, "filter": filters}}


def entity_filter(names: list[str]) -> dict[str, Any]:
    """Any of the names, with what each covers: a family's versioned names (a rule on Kling fires for
    "Kling 3.0") and a place's members and authorities (a rule on the EU fires for Italy's Garante)."""
    from enrich.entities import covered_names, version_prefixes

    wanted = list(dict.fromkeys([*names, *(covered for name in names for covered in covered_names(name))]))
    should: list[dict[str, Any]] = [{"terms": {"entities": wanted}}]
    should.extend({"prefix": {"entities": prefix}} for name in names for prefix in version_prefixes(name))
    return {"bool": {"should": should, "minimum_should_match": 1}}


def window_filter(since: datetime) -> dict[str, Any]:
    """Indexed since ``since``; documents without ``indexed_at`` fall back on ``first_seen_at``."""
    start = iso(since)
    return {
        "bool": {
            "should": [
                {"range": {"indexed_at": {"gte": start}}},
                {
                    "bool": {
                        "must_not": [{"exists": {"field": "indexed_at"}}],
                        "filter": [{"range": {"first_seen_at": {"gte": start}}}],
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def story_key(source: dict[str, Any], doc_id: str) -> str:
    return str(source.get("story_id") or f"{_LOOSE}{source.get('id') or doc_id}")


def _key_filters(keys: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Term filters selecting the articles of these story keys, in chunks the node accepts."""
    keys = sorted(keys)
    for start in range(0, len(keys), _TERMS_CHUNK):
        chunk = keys[start : start + _TERMS_CHUNK]
        stories = [k for k in chunk if not k.startswith(_LOOSE)]
        loose = [k[len(_LOOSE) :] for k in chunk if k.startswith(_LOOSE)]
        should: list[dict[str, Any]] = []
        if stories:
            should.append({"terms": {"story_id": stories}})
        if loose:
            should.append({"ids": {"values": loose}})
        yield {"bool": {"should": should, "minimum_should_match": 1}}


def _scan(
    client: Elasticsearch, index: str, query: dict[str, Any], fields: list[str], page: int = 2000
) -> Iterator[dict[str, Any]]:
    """All hits, paged with search_after on the article id: one request for the usual small window,
    no scroll context to open and clear."""
    after: list[Any] | None = None
    while True:
        hits = client.search(
            index=index,
            query=query,
            source_includes=fields,
            size=page,
            sort=[{"id": "asc"}],
            search_after=after,
        )["hits"]["hits"]
        yield from hits
        if len(hits) < page:
            return
        after = hits[-1]["sort"]


def window_keys(client: Elasticsearch, settings: Settings, since: datetime) -> set[str]:
    """Story keys with at least one article indexed since ``since``."""
    alias = articles_alias(settings)
    return {
        story_key(hit["_source"], hit["_id"])
        for hit in _scan(client, alias, window_filter(since), ["id", "story_id"])
    }


def matching_articles(
    client: Elasticsearch, settings: Settings, rule: Rule, keys: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """Articles of these stories that match the rule, grouped by story key."""
    alias = articles_alias(settings)
    base = rule_query(rule)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for key_filter in _key_filters(keys):
        query = {"bool": {"must": [base], "filter": [key_filter]}}
        for hit in _scan(client, alias, query, ARTICLE_FIELDS):
            grouped.setdefault(story_key(hit["_source"], hit["_id"]), []).append(hit["_source"])
    return grouped


def story_articles(
    client: Elasticsearch, settings: Settings, keys: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every article of these stories (corroboration is a property of the whole story)."""
    alias = articles_alias(settings)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for key_filter in _key_filters(keys):
        for hit in _scan(client, alias, key_filter, ARTICLE_FIELDS):
            grouped.setdefault(story_key(hit["_source"], hit["_id"]), []).append(hit["_source"])
    return grouped


def _seen(article: dict[str, Any]) -> str:
    return str(article.get("first_seen_at") or article.get("indexed_at") or article.get("published_at") or "")


def _link(article: dict[str, Any]) -> Link:
    return Link(
        source=str(article.get("source") or ""),
        lang=article.get("lang"),
        title=str(article.get("title") or ""),
        title_en=article.get("title_en"),
        url=str(article.get("canonical_url") or article.get("url") or ""),
        first_seen_at=_seen(article) or None,
    )


def _ranked(values: Iterable[str]) -> list[str]:
    return [value for value, _ in Counter(v for v in values if v).most_common()]


def english_line(articles: list[dict[str, Any]], lead: dict[str, Any]) -> tuple[str | None, str | None]:
    """(English headline, where it comes from): an English-language member's own headline first, else
    a machine translation of the lead article when a backend made one; else none — a glossary pass
    over a German title is not English, and the original is never labelled as such."""
    english = next((a for a in articles if a.get("lang") == "en" and a.get("title")), None)
    if english is not None:
        return str(english["title"]), f"from {english.get('source') or 'an English outlet'}"
    if lead.get("title_en") and lead.get("translation_status") in ("translated", "cached"):
        return str(lead["title_en"]), f"machine translation ({lead.get('translation_backend') or 'unknown'})"
    return None, None


def primary_event(matching: list[dict[str, Any]]) -> str | None:
    """The story's event type: the one its matching articles report most (their primary type)."""
    kinds = _ranked(str(a.get("event_type")) for a in matching if a.get("event_type"))
    kinds = [kind for kind in kinds if kind != "other"] or kinds
    if kinds:
        return kinds[0]
    listed = _ranked(t for a in matching for t in a.get("event_types") or [])
    return listed[0] if listed else None


def summarize(
    key: str, articles: list[dict[str, Any]], matching: list[dict[str, Any]], max_links: int
) -> StorySummary:
    """The message snapshot of a story: headline from its earliest matching article, counts from all."""
    articles = sorted(articles or matching, key=_seen)
    matching = sorted(matching, key=_seen)
    lead = matching[0] if matching else articles[0]
    english, english_from = english_line(articles, lead)
    links: list[Link] = []
    outlets_linked: set[str] = set()
    for article in articles:  # one link per outlet first, earliest first
        if article.get("source") not in outlets_linked:
            outlets_linked.add(str(article.get("source")))
            links.append(_link(article))
    translated = lead.get("translation_status") in ("translated", "cached")
    return StorySummary(
        story_id=key,
        headline=str(lead.get("title") or ""),
        headline_en=english if english != lead.get("title") else None,
        headline_en_from=english_from if english != lead.get("title") else None,
        lang=lead.get("lang"),
        lead=str(lead.get("lead") or ""),
        lead_en=lead.get("lead_en") if translated else None,
        event_type=primary_event(matching),
        event_types=_ranked(t for a in matching for t in a.get("event_types") or []),
        entities=_ranked(e for a in matching for e in a.get("entities") or []),
        outlets=sorted({str(a["source"]) for a in articles if a.get("source")}),
        languages=sorted({str(a["lang"]) for a in articles if a.get("lang")}),
        countries=sorted({str(a["country"]) for a in articles if a.get("country")}),
        article_count=len(articles),
        first_report=_link(articles[0]),
        links=links[:max_links],
    )


def corroborated(rule: Rule, story: StorySummary) -> bool:
    return len(story.outlets) >= rule.min_outlets and len(story.languages) >= rule.min_languages


def update_reasons(settings: Settings, rule: Rule, before: dict[str, Any], story: StorySummary) -> list[str]:
    """Thresholds that matter to a reader; anything else (one more outlet) is not worth a message."""
    reasons = []
    new_langs = sorted(set(story.languages) - set(before.get("languages") or []))
    if new_langs:
        reasons.append("new language: " + ", ".join(new_langs))
    new_countries = sorted(set(story.countries) - set(before.get("countries") or []))
    if new_countries and before.get("countries"):
        reasons.append("new country: " + ", ".join(new_countries))
    level = max(settings.alerts_corroboration_outlets, rule.min_outlets)
    if len(before.get("outlets") or []) < level <= len(story.outlets):
        reasons.append(f"corroborated: {len(story.outlets)} outlets")
    return reasons


@dataclass
class Planned:
    """One alert a rule makes (or would make, for ``alerts test``)."""

    alert_id: str
    kind: str  # new | update
    status: str  # created | exists | would-create | below-corroboration | no-threshold-crossed
    story: StorySummary


@dataclass
class RuleResult:
    rule: str
    since: str
    candidates: int = 0
    matched: int = 0
    created: int = 0
    updates: int = 0
    known: int = 0
    uncorroborated: int = 0
    planned: list[Planned] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "since": self.since,
            "candidate_stories": self.candidates,
            "matched_stories": self.matched,
            "alerts_created": self.created,
            "updates_created": self.updates,
            "already_alerted": self.known,
            "below_corroboration": self.uncorroborated,
            "error": self.error,
        }


def watermark_id(rule: Rule) -> str:
    return stable_id("watermark", rule.name)


def window_start(client: Elasticsearch, settings: Settings, rule: Rule, now: datetime) -> datetime:
    found = get_doc(client, alert_state_index(settings), watermark_id(rule))
    if found is None:
        return now - timedelta(seconds=settings.alerts_initial_lookback_s)
    return parse_iso(found["_source"]["watermark"]) - timedelta(seconds=settings.alerts_overlap_s)


def _advance_watermark(client: Elasticsearch, settings: Settings, rule: Rule, now: datetime) -> None:
    index, doc_id = alert_state_index(settings), watermark_id(rule)
    found = get_doc(client, index, doc_id)
    if found is not None and parse_iso(found["_source"]["watermark"]) >= now:
        return  # a parallel run got further; never move a watermark back
    client.index(
        index=index,
        id=doc_id,
        document={"doc_id": doc_id, "type": "watermark", "rule": rule.name, "watermark": iso(now)},
    )


def _alert_record(
    rule: Rule, alert_id: str, kind: str, story: StorySummary, now: datetime, parent: str | None
) -> dict[str, Any]:
    message = Message(
        alert_id=alert_id,
        rule=rule.name,
        rule_description=rule.description,
        kind="new" if kind == "new" else "update",
        stories=[story],
        parent_id=parent,
    )
    return {
        "doc_id": alert_id,
        "type": "alert",
        "rule": rule.name,
        "story_id": story.story_id,
        "alert_id": alert_id,
        "parent_id": parent,
        "kind": kind,
        "mode": rule.mode,
        "status": "queued" if rule.mode == "immediate" else "waiting",
        "created_at": iso(now),
        "updated_at": iso(now),
        "languages": story.languages,
        "countries": story.countries,
        "outlets": story.outlets,
        "message": message.as_doc(),
    }


def evaluate_rule(
    client: Elasticsearch,
    settings: Settings,
    rule: Rule,
    now: datetime,
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    keys_cache: dict[str, set[str]] | None = None,
) -> RuleResult:
    """Evaluate one rule; with ``dry_run`` nothing is written (``alerts test``)."""
    index = alert_state_index(settings)
    have_state = bool(client.indices.exists(index=index))
    if not dry_run:
        ensure_state_indices(client, settings)
        have_state = True
    start = since or (window_start(client, settings, rule, now) if have_state else None)
    if start is None:
        start = now - timedelta(seconds=settings.alerts_initial_lookback_s)
    result = RuleResult(rule=rule.name, since=iso(start))
    if not client.indices.exists(index=articles_alias(settings)):
        return result  # nothing indexed yet: nothing to alert on (the watermark stays unset)
    cache_key = iso(start)
    keys = keys_cache.get(cache_key) if keys_cache is not None else None
    if keys is None:
        keys = window_keys(client, settings, start)
        if keys_cache is not None:
            keys_cache[cache_key] = keys
    result.candidates = len(keys)
    matches = matching_articles(client, settings, rule, keys) if keys else {}
    result.matched = len(matches)
    stories = story_articles(client, settings, set(matches)) if matches else {}
    ids = {key: stable_id(rule.name, key) for key in matches}
    existing: dict[str, dict[str, Any]] = {}
    update_ids = {key: stable_id(rule.name, key, "update") for key in matches}
    if have_state and ids:
        found = client.mget(index=index, ids=list(ids.values()) + list(update_ids.values()))
        existing = {doc["_id"]: doc["_source"] for doc in found["docs"] if doc.get("found")}
    for key in sorted(matches):
        story = summarize(key, stories.get(key, []), matches[key], settings.alerts_max_links)
        alert_id = ids[key]
        before = existing.get(alert_id)
        if before is None:
            if not corroborated(rule, story):
                result.uncorroborated += 1
                result.planned.append(Planned(alert_id, "new", "below-corroboration", story))
                continue
            record = _alert_record(rule, alert_id, "new", story, now, None)
            created = False if dry_run else create_once(client, index, alert_id, record)
            status = "would-create" if dry_run else ("created" if created else "exists")
            result.created += int(created)
            result.known += int(status == "exists")
            result.planned.append(Planned(alert_id, "new", status, story))
            continue
        result.known += 1
        result.planned.append(Planned(alert_id, "new", "exists", story))
        if not rule.updates or update_ids[key] in existing:
            continue
        reasons = update_reasons(settings, rule, before, story)
        if not reasons:
            continue
        update = story.model_copy(update={"update_reasons": reasons, "is_update": True})
        record = _alert_record(rule, update_ids[key], "update", update, now, alert_id)
        created = False if dry_run else create_once(client, index, update_ids[key], record)
        result.updates += int(created)
        status = "would-create" if dry_run else ("created" if created else "exists")
        result.planned.append(Planned(update_ids[key], "update", status, update))
    if not dry_run and since is None:
        _advance_watermark(client, settings, rule, now)
    return result


def evaluate(client: Elasticsearch, settings: Settings, rules: list[Rule], now: datetime) -> list[RuleResult]:
    """Every enabled rule; one rule failing (bad query, node hiccup) is reported and the others run."""
    results = []
    cache: dict[str, set[str]] = {}
    for rule in rules:
        if not rule.enabled:
            continue
        try:
            results.append(evaluate_rule(client, settings, rule, now, keys_cache=cache))
        except Exception as error:  # one rule's failure must not stop the others
            results.append(RuleResult(rule=rule.name, since="", error=f"{type(error).__name__}: {error}"))
    return results
