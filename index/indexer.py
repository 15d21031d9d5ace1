"""Bulk indexing of articles: stable ids, batches, retries with backoff, failures kept for retry.

* A document's `_id` is the article id (derived from the canonical URL), so a re-run overwrites and
  never duplicates.
* 429 and 5xx answers (per document or for the whole request) are retried with exponential backoff;
  anything else is a failure of that document.
* Every failure is reported with its reason and written, with the full document, to a failures file
  on staging (`index.failures`); the next run re-submits it unless a newer version of the same id
  arrives, and `newsradar index retry` re-submits it on demand.
* A node that stays unreachable after the retries (stopped, crashed, partitioned) fails the rest of the
  batch at once, into the failures file, instead of aborting the run and losing what it knew: the
  failures file is written even when the run ends in an exception.
* A document carries its `story_id` and nothing else about its story. What a hit says of its story
  (size, outlets, languages) is counted when the hit is shown (`index.story_facts`), so a growing
  story never rewrites its earlier members: one chunk is one bulk request of its own documents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from elasticsearch import ApiError, ConnectionTimeout, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch.helpers import streaming_bulk

from index.failures import FailureStore, failure_entry
from index.mapping import EmbeddingModelMismatch, ensure_articles_index, ensure_same_model
from newsradar.article import Article
from newsradar.dates import earlier, iso_or_none
from newsradar.http import Transient, with_retries
from newsradar.settings import Settings

_MAX_BACKOFF = 30.0


@dataclass
class IndexReport:
    indexed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason); kept for retry
    resubmitted: int = 0  # pending failures of earlier runs sent again
    quarantined: int = 0  # failures kept but no longer re-sent by every run (rejected for good)
    by_lang: Counter[str] = field(default_factory=Counter)


def _events(article: Article) -> list[dict[str, Any]]:
    """Event types with their confidence, as the classify stage left them (never reclassified here)."""
    return [
        {"type": str(item["type"]), "confidence": float(item.get("confidence") or 0.0)}  # type: ignore[arg-type]
        for item in article.events
        if item.get("type")
    ]


def to_document(article: Article, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    story_id = article.story_id or article.id  # a story of one until dedupe says otherwise
    event_types = list(article.event_types)
    events = _events(article)
    for event in events:
        if event["type"] not in event_types:
            event_types.append(event["type"])
    return {
        "id": article.id,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source": article.source,
        "country": article.country,
        "lang": article.lang,
        "title": article.title,
        "text": article.text,
        "lead": article.lead,
        "title_en": article.title_en,
        "lead_en": article.lead_en,
        "text_en": getattr(article, "text_en", None),
        "translation_backend": article.translation_backend,
        "translation_status": article.translation_status,
        "authors": article.authors,
        "paywall": article.paywall,
        "published_at": iso_or_none(article.published),
        "published_source": article.published_source,
        "first_seen_at": iso_or_none(article.fetched_at or now),
        "indexed_at": now.isoformat(),
        "story_id": story_id,
        "duplicate_of": article.duplicate_of,
        "event_types": event_types,
        "events": events,
        "entities": article.entities,
        "ai_related": article.ai_related,
        "event_type": article.event_type,
        "event_scores": dict(article.event_scores),
        "embedding": article.embedding,
        "embedding_model": article.embedding_model,
        "embedding_dim": len(article.embedding) if article.embedding else None,
    }


def _reason(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    reason = f"{error.get('type')}: {error.get('reason')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return reason


RETRY_ON = (429, 502, 503, 504)  # the node is busy or restarting: the same request can succeed later
MAX_CHUNK_BYTES = 20 * 1024 * 1024  # well under the node's 100 MB request limit, multi-MB bodies included


@dataclass
class _Outcome:
    ok: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[dict[str, Any], str, int]] = field(default_factory=list)  # (action, reason, status)


def _bulk_op(action: dict[str, Any]) -> dict[str, Any]:
    return {
        "_op_type": action["op"],
        "_index": action["index"],
        "_id": action["id"],
        "_source": action["body"],
    }


def send_bulk(
    client: Elasticsearch,
    actions: list[dict[str, Any]],
    *,
    max_attempts: int = 5,
    initial_backoff: float = 0.5,
) -> _Outcome:
    """One batch of actions (``{"op", "index", "id", "body"}``) through ``streaming_bulk``, which
    splits it by size and retries what the node answers with 429 or 502-504, per document and for
    the whole request, with exponential backoff. Any other error fails that document alone; a node
    that cannot be reached at all fails every document not yet answered."""
    outcome = _Outcome()
    waiting = {action["id"]: action for action in actions}
    try:
        for ok, item in streaming_bulk(
            client,
            (_bulk_op(action) for action in actions),
            chunk_size=max(1, len(actions)),
            max_chunk_bytes=MAX_CHUNK_BYTES,
            raise_on_error=False,
            raise_on_exception=False,
            max_retries=max_attempts - 1,
            initial_backoff=initial_backoff,
            max_backoff=_MAX_BACKOFF,
            retry_on_status=RETRY_ON,
        ):
            info = next(iter(item.values()))
            action = waiting.pop(str(info.get("_id")))
            if ok:
                outcome.ok.append(action)
                continue
            status = int(info.get("status") or 500)
            reason = _reason(info.get("error"))
            if status in RETRY_ON and max_attempts > 1:
                reason += f" (gave up after {max_attempts} attempts)"
            outcome.failed.append((action, reason, status))
    except (ESConnectionError, ConnectionTimeout) as error:
        outcome.failed.extend((action, f"connection failed: {error}", 503) for action in waiting.values())
    return outcome


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def index_articles(
    client: Elasticsearch,
    settings: Settings,
    articles: Iterable[Article],
    chunk_size: int = 500,
    *,
    max_attempts: int = 5,
    initial_backoff: float = 0.5,
    retry_pending: bool = True,
) -> IndexReport:
    return index_documents(
        client,
        settings,
        (to_document(article) for article in articles),
        chunk_size,
        max_attempts=max_attempts,
        initial_backoff=initial_backoff,
        retry_pending=retry_pending,
    )


def index_documents(
    client: Elasticsearch,
    settings: Settings,
    documents: Iterable[dict[str, Any]],
    chunk_size: int = 500,
    *,
    max_attempts: int = 5,
    initial_backoff: float = 0.5,
    retry_pending: bool = True,
    include_quarantined: bool = False,
) -> IndexReport:
    """Index documents (see `to_document`) under their `id`, then re-submit pending failures of
    earlier runs that no fresher version replaced (quarantined ones only with ``include_quarantined``).

    ``indexed_at`` is the moment a document actually lands: a document kept for retry and indexed
    later counts as new then, so alert evaluation (which looks at what was indexed since its
    watermark) sees it once; the outbox's deterministic ids keep a re-indexed story from alerting twice.
    """
    alias = ensure_articles_index(client, settings)
    store = FailureStore(settings)
    pending = store.load()
    changes: dict[str, dict[str, Any] | None] = {}  # what this run adds to the failure journal
    report = IndexReport()
    seen: set[str] = set()

    unreachable: list[str] = []  # set once the node stopped answering: the rest fails fast

    def fail(doc: dict[str, Any], reason: str, status: int) -> None:
        entry = failure_entry(doc, reason, status, pending.get(doc["id"]))
        pending[doc["id"]] = changes[doc["id"]] = entry
        report.failed.append((doc["id"], reason))
        report.quarantined += int(entry["quarantined"])

    def resolve(key: str) -> None:
        if pending.pop(key, None) is not None or key in changes:
            changes[key] = None

    vector_spaces: dict[tuple[str, int], str] = {}  # (model, dim) -> "" if the index takes it, else why not

    def refuse_other_models(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One index, one vector space: documents whose vectors come from another model (or size)
        than the index holds are failed and kept, never mixed in."""
        kept = []
        for doc in chunk:
            space = (doc["embedding_model"], doc["embedding_dim"]) if doc.get("embedding") else None
            if space is not None and space not in vector_spaces:
                try:
                    ensure_same_model(client, alias, *space)
                    vector_spaces[space] = ""
                except EmbeddingModelMismatch as error:
                    vector_spaces[space] = str(error)
            if space is not None and vector_spaces[space]:
                fail(doc, vector_spaces[space], 400)
            else:
                kept.append(doc)
        return kept

    def run(chunk: list[dict[str, Any]]) -> None:
        if unreachable:
            for doc in chunk:
                fail(doc, unreachable[0], 503)
            return
        chunk = refuse_other_models(chunk)
        if not chunk:
            return
        ids = [doc["id"] for doc in chunk]
        existing = _mget(client, alias, ids, max_attempts=max_attempts, initial_backoff=initial_backoff)
        if isinstance(existing, str):
            unreachable.append(existing)
            for doc in chunk:
                fail(doc, existing, 503)
            return
        now = datetime.now(UTC).isoformat()
        for doc, old in zip(chunk, existing, strict=True):
            doc["indexed_at"] = now
            if old.get("found"):
                doc["first_seen_at"] = earlier(old["_source"].get("first_seen_at"), doc.get("first_seen_at"))
        actions = [{"op": "index", "index": alias, "id": doc["id"], "body": doc} for doc in chunk]
        outcome = send_bulk(client, actions, max_attempts=max_attempts, initial_backoff=initial_backoff)
        for action in outcome.ok:
            report.indexed += 1
            report.by_lang[action["body"].get("lang") or "unknown"] += 1
            resolve(action["id"])
        for action, reason, status in outcome.failed:
            fail(action["body"], reason, status)
        if outcome.failed and all(r.startswith("connection failed") for _, r, _ in outcome.failed):
            unreachable.append(outcome.failed[0][1])

    try:
        if retry_pending:
            # Entries of kind "story" were written by versions that kept story facts on every member:
            # facts are counted at search time now, so nothing is owed for them.
            for key in [key for key, entry in pending.items() if entry.get("kind") == "story"]:
                resolve(key)
        for chunk in _chunks(documents, chunk_size):
            seen.update(doc["id"] for doc in chunk)
            run(chunk)
        if retry_pending:
            leftovers = [
                entry["document"]
                for key, entry in list(pending.items())
                if key not in seen
                and entry.get("kind", "document") == "document"
                and (include_quarantined or not entry.get("quarantined"))
            ]
            report.resubmitted = len(leftovers)
            for chunk in _chunks(leftovers, chunk_size):
                run(chunk)
    finally:
        store.record(changes)
    if report.indexed and not unreachable:
        client.indices.refresh(index=alias)
    return report


def _mget(
    client: Elasticsearch, alias: str, ids: list[str], *, max_attempts: int, initial_backoff: float
) -> list[dict[str, Any]] | str:
    """The stored versions of `ids` (their first-seen time must survive a re-index), or the reason
    the node could not be asked, after the same retries as a bulk request."""

    def once() -> list[dict[str, Any]]:
        try:
            response = client.mget(index=alias, ids=ids, source_includes=["first_seen_at"])
        except ApiError as error:
            if error.status_code in RETRY_ON:
                raise Transient(f"lookup failed: {error}") from None
            raise
        except (ESConnectionError, ConnectionTimeout) as error:
            raise Transient(f"connection failed: {error}") from None
        return list(response["docs"])

    try:
        return with_retries(once, attempts=max_attempts, backoff=initial_backoff, max_wait=_MAX_BACKOFF)
    except Transient as error:
        return f"{error} (gave up after {max_attempts} attempts)"


def retry_failed(
    client: Elasticsearch, settings: Settings, *, max_attempts: int = 5, initial_backoff: float = 0.5
) -> IndexReport:
    """Re-submit every pending failure now, quarantined documents included."""
    return index_documents(
        client,
        settings,
        [],
        max_attempts=max_attempts,
        initial_backoff=initial_backoff,
        retry_pending=True,
        include_quarantined=True,
    )
