"""Digests: one message per digest rule and period with every alert that waited for it.

The digest record's id derives from (rule, period), so two runs in the same period build one digest;
a run that stops half-way finishes it the next time (its record stays ``open`` until then).
"""

from __future__ import annotations

from datetime import datetime

from elasticsearch import Elasticsearch

from alerts.channels import destinations
from alerts.enqueue import BY_AGE, PrepareReport, alert_filter, enqueue
from alerts.message import Message
from alerts.rules import Rule
from alerts.state import create_once, get_doc, search_all, stable_id
from alerts.timing import last_due
from index.mapping import alert_state_index
from newsradar.dates import iso
from newsradar.settings import Settings


def enqueue_digests(
    client: Elasticsearch, settings: Settings, rules: dict[str, Rule], now: datetime, report: PrepareReport
) -> None:
    for rule in rules.values():
        if rule.mode == "digest" and rule.enabled and rule.schedule is not None:
            report.digests += _digest(client, settings, rule, now, report)


def _digest(
    client: Elasticsearch, settings: Settings, rule: Rule, now: datetime, report: PrepareReport
) -> int:
    """One digest per rule and period: the alerts that were waiting when the period began."""
    index = alert_state_index(settings)
    period = last_due(rule.schedule, now) if rule.schedule else now
    digest_id = stable_id(rule.name, "digest", iso(period))
    found = get_doc(client, index, digest_id)
    if found is None:
        waiting = search_all(
            client, index, alert_filter(("rule", rule.name), ("status", "waiting"), before=period), BY_AGE
        )
        if not waiting:
            return 0
        message = Message(
            alert_id=digest_id,
            rule=rule.name,
            rule_description=rule.description,
            kind="digest",
            stories=[s for hit in waiting for s in Message.model_validate(hit["_source"]["message"]).stories],
            period=iso(period),
        )
        record = {
            "doc_id": digest_id,
            "type": "digest",
            "rule": rule.name,
            "alert_id": digest_id,
            "alert_ids": [hit["_id"] for hit in waiting],
            "status": "open",
            "created_at": iso(now),
            "message": message.as_doc(),
        }
        if not create_once(client, index, digest_id, record):
            found = get_doc(client, index, digest_id)
        source = record if found is None else found["_source"]
    else:
        source = found["_source"]
    if source.get("status") == "complete":
        return 0
    message = Message.model_validate(source["message"])
    report.enqueued += enqueue(client, settings, message, destinations(rule), now, now)
    for alert_id in source["alert_ids"]:
        client.update(
            index=index,
            id=alert_id,
            doc={"status": "digested", "digest_id": digest_id, "updated_at": iso(now)},
            retry_on_conflict=5,
        )
    client.update(index=index, id=digest_id, doc={"status": "complete"}, retry_on_conflict=5)
    return 1
