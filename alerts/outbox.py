"""The outbox: alert records become one outbox entry per destination, and entries are delivered
with a claim-then-send protocol so that neither a crash nor a parallel run sends twice where the
channel can tell, and a channel being down never loses an alert.

Per entry: ``pending`` → (claim with optimistic concurrency: ``sending`` + attempt id) → send →
``sent``; on error back to ``pending`` with ``not_before`` pushed out (exponential backoff or the
channel's Retry-After), or ``failed`` after ``alerts_max_attempts`` / a permanent error, which also
queues one operator notice. A ``sending`` entry whose lease (``alerts_sending_lease_s``) expired is
taken to be from a crashed run and is sent again under the same idempotency key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import ConflictError, Elasticsearch

from alerts.channel import Channel, Delivery, DeliveryError
from alerts.email import EmailChannel
from alerts.message import Message
from alerts.rules import Rule
from alerts.slack import SlackChannel
from alerts.state import create_once, ensure_state_indices, get_doc, refresh, search_all, stable_id
from alerts.timing import iso, last_due, parse_iso, quiet_until
from index.mapping import alert_state_index, outbox_index
from newsradar.settings import Settings

Destination = tuple[str, str, list[str]]  # (destination key, channel kind, targets)


def default_channels(settings: Settings) -> dict[str, Channel]:
    return {"email": EmailChannel(settings), "slack": SlackChannel(settings)}


def destinations(rule: Rule) -> list[Destination]:
    found: list[Destination] = []
    if rule.channels.email:
        found.append(("email", "email", list(rule.channels.email)))
    found.extend((f"slack:{name}", "slack", [name]) for name in rule.channels.slack)
    return found


def operator_destinations(settings: Settings) -> list[Destination]:
    found: list[Destination] = []
    emails = [a.strip() for a in settings.operator_email.split(",") if a.strip()]
    if emails:
        found.append(("email", "email", emails))
    found.extend(
        (f"slack:{name.strip()}", "slack", [name.strip()])
        for name in settings.operator_slack.split(",")
        if name.strip()
    )
    return found


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
    """Create the outbox entries of a message (idempotent: deterministic ids, ``op_type=create``)."""
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


@dataclass
class PrepareReport:
    enqueued: int = 0
    held_quiet: int = 0
    digests: int = 0
    rule_missing: int = 0


def _alert_filter(*terms: tuple[str, str], before: datetime | None = None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"term": {"type": "alert"}}]
    filters.extend({"term": {name: value}} for name, value in terms)
    if before is not None:
        filters.append({"range": {"created_at": {"lt": iso(before)}}})
    return {"bool": {"filter": filters}}


_BY_AGE = [{"created_at": "asc"}, {"doc_id": "asc"}]


def prepare(
    client: Elasticsearch, settings: Settings, rules: dict[str, Rule], now: datetime
) -> PrepareReport:
    """Turn queued immediate alerts and due digests into outbox entries."""
    ensure_state_indices(client, settings)
    refresh(client, settings)
    report = PrepareReport()
    index = alert_state_index(settings)
    for hit in search_all(client, index, _alert_filter(("status", "queued")), _BY_AGE):
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
    for rule in rules.values():
        if rule.mode == "digest" and rule.enabled and rule.schedule is not None:
            report.digests += _prepare_digest(client, settings, rule, now, report)
    return report


def _prepare_digest(
    client: Elasticsearch, settings: Settings, rule: Rule, now: datetime, report: PrepareReport
) -> int:
    """One digest per rule and period: the alerts that were waiting when the period began."""
    index = alert_state_index(settings)
    period = last_due(rule.schedule, now) if rule.schedule else now
    digest_id = stable_id(rule.name, "digest", iso(period))
    found = get_doc(client, index, digest_id)
    if found is None:
        waiting = search_all(
            client, index, _alert_filter(("rule", rule.name), ("status", "waiting"), before=period), _BY_AGE
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


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    operator_notices: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "skipped": self.skipped,
            "operator_notices": self.operator_notices,
            "errors": self.errors,
        }


def _due_query(settings: Settings, now: datetime) -> dict[str, Any]:
    stale = now - timedelta(seconds=settings.alerts_sending_lease_s)
    return {
        "bool": {
            "should": [
                {
                    "bool": {
                        "filter": [
                            {"term": {"status": "pending"}},
                            {"range": {"not_before": {"lte": iso(now)}}},
                        ]
                    }
                },
                {
                    "bool": {
                        "filter": [
                            {"term": {"status": "sending"}},
                            {"range": {"claimed_at": {"lte": iso(stale)}}},
                        ]
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def _is_due(settings: Settings, source: dict[str, Any], now: datetime) -> bool:
    if source.get("status") == "pending":
        return parse_iso(source["not_before"]) <= now
    if source.get("status") == "sending":
        claimed = parse_iso(source["claimed_at"])
        return claimed <= now - timedelta(seconds=settings.alerts_sending_lease_s)
    return False


def _backoff(settings: Settings, attempts: int) -> float:
    return float(min(settings.alerts_retry_base_s * 2 ** max(attempts - 1, 0), settings.alerts_retry_max_s))


def deliver(
    client: Elasticsearch,
    settings: Settings,
    now: datetime,
    channels: dict[str, Channel] | None = None,
    limit: int = 1000,
) -> DeliveryReport:
    """Send every due outbox entry once; operator notices queued meanwhile go out in the same run."""
    ensure_state_indices(client, settings)
    channels = channels or default_channels(settings)
    report = DeliveryReport()
    index = outbox_index(settings)
    for _round in range(2):  # second round: operator notices queued by the first
        client.indices.refresh(index=index)
        due = search_all(client, index, _due_query(settings, now), _BY_AGE, limit=limit)
        if not due:
            break
        for hit in due:
            deliver_one(client, settings, hit["_id"], channels, now, report)
    return report


def deliver_one(
    client: Elasticsearch,
    settings: Settings,
    doc_id: str,
    channels: dict[str, Channel],
    now: datetime,
    report: DeliveryReport,
) -> None:
    index = outbox_index(settings)
    current = get_doc(client, index, doc_id)
    if current is None or not _is_due(settings, current["_source"], now):
        report.skipped += 1
        return
    source = current["_source"]
    attempts = int(source.get("attempts") or 0) + 1
    try:  # the claim: only one run wins the compare-and-set on this version of the entry
        client.update(
            index=index,
            id=doc_id,
            doc={
                "status": "sending",
                "attempt_id": uuid.uuid4().hex,
                "claimed_at": iso(now),
                "attempts": attempts,
                "updated_at": iso(now),
            },
            if_seq_no=current["_seq_no"],
            if_primary_term=current["_primary_term"],
        )
    except ConflictError:
        report.skipped += 1
        return
    channel = channels.get(source["channel"])
    message = Message.model_validate(source["message"])
    try:
        if channel is None:
            raise DeliveryError(f"no channel {source['channel']!r}", permanent=True)
        receipt = channel.send(Delivery(key=doc_id, message=message, targets=list(source["target"])))
    except Exception as error:  # DeliveryError, or a bug in rendering: either way keep the entry
        reason = str(error) if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
        permanent = isinstance(error, DeliveryError) and error.permanent
        retry_after = error.retry_after if isinstance(error, DeliveryError) else None
        if permanent or attempts >= settings.alerts_max_attempts:
            client.update(
                index=index,
                id=doc_id,
                doc={"status": "failed", "last_error": reason, "updated_at": iso(now)},
                retry_on_conflict=5,
            )
            report.failed += 1
            report.operator_notices += notify_operator(
                client, settings, doc_id, source, attempts, reason, now
            )
        else:
            wait = retry_after if retry_after is not None else _backoff(settings, attempts)
            client.update(
                index=index,
                id=doc_id,
                doc={
                    "status": "pending",
                    "last_error": reason,
                    "updated_at": iso(now),
                    "not_before": iso(now + timedelta(seconds=wait)),
                },
                retry_on_conflict=5,
            )
            report.retrying += 1
        report.errors.append(f"{doc_id}: {reason}")
        return
    client.update(
        index=index,
        id=doc_id,
        doc={
            "status": "sent",
            "sent_at": iso(now),
            "receipt": receipt,
            "last_error": None,
            "updated_at": iso(now),
        },
        retry_on_conflict=5,
    )
    report.sent += 1


def notify_operator(
    client: Elasticsearch,
    settings: Settings,
    doc_id: str,
    source: dict[str, Any],
    attempts: int,
    reason: str,
    now: datetime,
) -> int:
    """Queue one notice per failed outbox entry (never about a notice itself)."""
    targets = operator_destinations(settings)
    if source.get("operator") or not targets:
        return 0
    message = Message.model_validate(source["message"])
    titles = "\n".join(f"  - {s.english_title}" for s in message.stories[:10])
    text = (
        f"Alert delivery failed: rule {source['rule']} to {source['destination']} after {attempts} attempts\n"
        f"last error: {reason}\n"
        f"outbox entry: {doc_id}\n"
        f"stories:\n{titles}\n"
        f"Fix the channel, then: newsradar alerts retry {doc_id}"
    )
    notice = Message(
        alert_id=stable_id("operator", doc_id), rule=str(source["rule"]), kind="operator", text=text
    )
    created = enqueue(client, settings, notice, targets, now, now, operator=True)
    client.update(
        index=outbox_index(settings), id=doc_id, doc={"operator_notified": True}, retry_on_conflict=5
    )
    return created


def retry(client: Elasticsearch, settings: Settings, doc_id: str, now: datetime) -> bool:
    """Operator action: put a failed (or stuck) entry back to pending with a fresh attempt budget."""
    index = outbox_index(settings)
    current = get_doc(client, index, doc_id)
    if current is None or current["_source"].get("status") == "sent":
        return False
    client.update(
        index=index,
        id=doc_id,
        doc={"status": "pending", "attempts": 0, "not_before": iso(now), "updated_at": iso(now)},
        refresh="wait_for",
        retry_on_conflict=5,
    )
    return True
