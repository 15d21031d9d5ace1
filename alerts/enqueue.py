"""Enqueueing: alert records become outbox entries, one per destination.

Entries are created with deterministic ids and ``op_type=create``, so a restart or a parallel run that
enqueues the same alert again creates nothing. Immediate alerts are enqueued here (held past quiet
hours with ``not_before``); digests are put together in ``digest.py`` and enqueued the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from alerts.channel import Destination
from alerts.channels import destinations
from alerts.message import Message
from alerts.rules import Rule
from alerts.state import create_once, ensure_state_indices, refresh, search_all
from alerts.timing import quiet_until
from index.mapping import alert_state_index, outbox_index
from newsradar.dates import iso
from newsradar.settings import Settings

BY_AGE = [{"created_at": "asc"}, {"doc_id": "asc"}]


@dataclass
class PrepareReport:
    enqueued: int = 0
    held_quiet: int = 0
    digests: int = 0
    rule_missing: int = 0


def outbox_id(alert_id: str, destination: str) -> str:
    return f"{alert_id}-{destination.replace(':', '-')}"


def enqueue(
    client: Elasticsearch,
    settings: Settings,
    message: Message,
    targets: list[Destination],
    now: datetime,
    not_before: datetime,
    operator: bool = False,
) -> int:
    """Create the outbox entries of a message; returns how many were new."""
    created = 0
    for destination, kind, recipients in targets:
        doc_id = outbox_id(message.alert_id, destination)
        created += create_once(
            client,
            outbox_index(settings),
            doc_id,
            {
                "doc_id": doc_id,
                "alert_id": message.alert_id,
                "rule": message.rule,
                "kind": message.kind,
                "story_ids": [s.story_id for s in message.stories],
                "channel": kind,
                "destination": destination,
                "target": recipients,
                "operator": operator,
                "status": "pending",
                "attempts": 0,
                "created_at": iso(now),
                "updated_at": iso(now),
                "not_before": iso(not_before),
                "message": message.as_doc(),
            },
        )
    return created


def alert_filter(*terms: tuple[str, str], before: datetime | None = None) -> dict[str, Any]:
    """Alert records with these field values (created before ``before``)."""
    filters: list[dict[str, Any]] = [{"term": {"type": "alert"}}]
    filters.extend({"term": {name: value}} for name, value in terms)
    if before is not None:
        filters.append({"range": {"created_at": {"lt": iso(before)}}})
    return {"bool": {"filter": filters}}


def enqueue_immediate(
    client: Elasticsearch, settings: Settings, rules: dict[str, Rule], now: datetime, report: PrepareReport
) -> None:
    """Queued alerts of immediate rules become outbox entries."""
    ensure_state_indices(client, settings)
    refresh(client, settings)
    index = alert_state_index(settings)
    for hit in search_all(client, index, alert_filter(("status", "queued")), BY_AGE):
        source = hit["_source"]
        rule = rules.get(source["rule"])
        if rule is None:  # rule deleted or currently invalid: keep the alert, deliver once it is back
            report.rule_missing += 1
            continue
        held = quiet_until(rule.quiet_hours, now)
        report.held_quiet += int(held is not None)
        message = Message.model_validate(source["message"])
        report.enqueued += enqueue(client, settings, message, destinations(rule), now, held or now)
        client.update(
            index=index,
            id=hit["_id"],
            doc={"status": "outboxed", "updated_at": iso(now)},
            retry_on_conflict=5,
        )
