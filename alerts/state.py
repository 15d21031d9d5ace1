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

from newsradar.settings import Settings

OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")


def state_index(settings: Settings) -> str:
    return settings.index_name("alert-state")


def outbox_index(settings: Settings) -> str:
    return settings.index_name("alerts")


def stable_id(*parts: str) -> str:
    """Deterministic id: the same rule and story always give the same alert."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}
_STATE_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "doc_id": _KEYWORD,
        "type": _KEYWORD,  # watermark | alert | digest
        "rule": _KEYWORD,
        "story_id": _KEYWORD,
        "alert_id": _KEYWORD,
        "parent_id": _KEYWORD,
        "kind": _KEYWORD,  # new | update | digest
        "mode": _KEYWORD,
        "status": _KEYWORD,  # queued | outboxed | waiting | digested | orphaned
        "digest_id": _KEYWORD,
        "alert_ids": _KEYWORD,
        "created_at": _DATE,
        "updated_at": _DATE,
        "watermark": _DATE,
        "languages": _KEYWORD,
        "countries": _KEYWORD,
        "outlets": _KEYWORD,
        "message": {"type": "object", "enabled": False},
    },
}
_OUTBOX_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "doc_id": _KEYWORD,
        "alert_id": _KEYWORD,
        "rule": _KEYWORD,
        "kind": _KEYWORD,
        "story_ids": _KEYWORD,
        "channel": _KEYWORD,  # email | slack
        "destination": _KEYWORD,  # email | slack:<connection>
        "target": _KEYWORD,
        "operator": {"type": "boolean"},
        "status": _KEYWORD,
        "attempts": {"type": "integer"},
        "attempt_id": _KEYWORD,
        "claimed_at": _DATE,
        "created_at": _DATE,
        "not_before": _DATE,
        "sent_at": _DATE,
        "updated_at": _DATE,
        "last_error": {"type": "text"},
        "receipt": _KEYWORD,
        "operator_notified": {"type": "boolean"},
        "message": {"type": "object", "enabled": False},
    },
}


def ensure_state_indices(client: Elasticsearch, settings: Settings) -> None:
    for name, mapping in ((state_index(settings), _STATE_MAPPING), (outbox_index(settings), _OUTBOX_MAPPING)):
        if not client.indices.exists(index=name):
            # 400 = created meanwhile by a parallel run: fine.
            client.options(ignore_status=400).indices.create(
                index=name,
                settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
                mappings=mapping,
            )


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
    client.indices.refresh(index=f"{state_index(settings)},{outbox_index(settings)}")
