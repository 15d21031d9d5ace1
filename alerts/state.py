"""Alert state in Elasticsearch, never in process memory: restarts and parallel runs see the same
facts. Two indices:

* ``<prefix>-alert-state``: per-rule watermarks, one record per alert (rule, story, kind) and per
  digest. Records are created with ``op_type=create`` under deterministic ids, so two evaluators
  racing on the same story create one record, not two.
* ``<prefix>-alerts``: the outbox, one document per (alert, destination) with ``status``
  pending → sending → sent | failed, ``attempts``, ``last_error`` and timestamps.
"""

from __future__ import annotations

import hashlib
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from index.mapping import (
    ALERT_STATE_MAPPING,
    OUTBOX_MAPPING,
    alert_state_index,
    ensure_index,
    outbox_index,
)
from newsradar.settings import Settings

OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "unconfirmed")


def stable_id(*parts: str) -> str:
    """Deterministic id: the same rule and story always give the same alert."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def ensure_state_indices(client: Elasticsearch, settings: Settings) -> None:
    ensure_index(client, alert_state_index(settings), ALERT_STATE_MAPPING)
    ensure_index(client, outbox_index(settings), OUTBOX_MAPPING)


def create_once(client: Elasticsearch, index: str, doc_id: str, document: dict[str, Any]) -> bool:
    """True when this call created the document, False when it existed (another run got there first)."""
    try:
        client.create(index=index, id=doc_id, document=document)
    except ConflictError:
        return False
    return True


def get_doc(client: Elasticsearch, index: str, doc_id: str) -> dict[str, Any] | None:
    """Realtime get (sees writes before a refresh), with ``_seq_no``/``_primary_term`` for claims."""
    try:
        found = client.get(index=index, id=doc_id)
    except NotFoundError:
        return None
    return dict(found)


def search_all(
    client: Elasticsearch,
    index: str,
    query: dict[str, Any],
    sort: list[Any],
    size: int = 500,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    """Page with search_after through a (small) state index; sort must end on a unique field."""
    hits: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while len(hits) < limit:
        page = client.search(index=index, query=query, sort=sort, size=size, search_after=after)
        batch = page["hits"]["hits"]
        hits.extend(batch)
        if len(batch) < size:
            break
        after = batch[-1]["sort"]
    return hits[:limit]


def refresh(client: Elasticsearch, settings: Settings) -> None:
    client.indices.refresh(index=f"{alert_state_index(settings)},{outbox_index(settings)}")
