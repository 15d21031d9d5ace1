"""Delivery: every due outbox entry is sent once, with a claim-then-send protocol, so that neither a
crash nor a parallel run sends twice where the channel can tell, and a channel being down never loses
an alert.

Per entry: ``pending`` → (claim with optimistic concurrency: ``sending`` + attempt id) → send →
``sent``; on error back to ``pending`` with ``not_before`` pushed out (exponential backoff or the
channel's Retry-After), or ``failed`` after ``alerts_max_attempts`` / a permanent error, which also
queues one operator notice. A ``sending`` entry whose lease (``alerts_sending_lease_s``) expired is
taken to be from a crashed run and is sent again under the same idempotency key.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import ConflictError, Elasticsearch

from alerts.channel import Channel, Delivery, DeliveryError, Destination, PartialDelivery
from alerts.channels import default_channels, operator_destinations
from alerts.enqueue import BY_AGE, enqueue
from alerts.message import Message
from alerts.state import ensure_state_indices, get_doc, search_all, stable_id
from index.mapping import outbox_index
from newsradar.dates import iso, parse_iso, utcnow
from newsradar.settings import Settings

log = logging.getLogger("newsradar.alerts")


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    unconfirmed: int = 0  # maybe delivered (ambiguous timeout): not resent, operators told
    partial: int = 0  # sent to some targets; the refused ones got an entry of their own
    lost_claims: int = 0  # this run's lease ran out and another run took the entry over
    skipped: int = 0
    operator_notices: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "unconfirmed": self.unconfirmed,
            "partial": self.partial,
            "lost_claims": self.lost_claims,
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
        due = search_all(client, index, _due_query(settings, now), BY_AGE, limit=limit)
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
    """Claim, send, record one entry. Every write after the claim is conditional on the claim's
    version: if this run took so long that its lease ran out and another run claimed the entry, this
    run's late write is dropped instead of overwriting the other's (a `sent` entry never turns back
    into `pending`)."""
    index = outbox_index(settings)
    current = get_doc(client, index, doc_id)
    if current is None or not _is_due(settings, current["_source"], now):
        report.skipped += 1
        return
    source = current["_source"]
    attempts = int(source.get("attempts") or 0) + 1
    # The lease runs from the moment of the claim, not from the start of the run: a long run's later
    # entries must not look stale to a run that starts meanwhile.
    claimed_at = max(now, utcnow())
    try:  # the claim: only one run wins the compare-and-set on this version of the entry
        claim = client.update(
            index=index,
            id=doc_id,
            doc={
                "status": "sending",
                "attempt_id": uuid.uuid4().hex,
                "claimed_at": iso(claimed_at),
                "attempts": attempts,
                "updated_at": iso(claimed_at),
            },
            if_seq_no=current["_seq_no"],
            if_primary_term=current["_primary_term"],
        )
    except ConflictError:
        report.skipped += 1
        return
    version = {"if_seq_no": claim["_seq_no"], "if_primary_term": claim["_primary_term"]}

    def settle(doc: dict[str, Any]) -> bool:
        """Write the outcome if the entry is still ours; False when another run took it over."""
        try:
            client.update(index=index, id=doc_id, doc={**doc, "updated_at": iso(now)}, **version)
        except ConflictError:
            report.lost_claims += 1
            report.errors.append(f"{doc_id}: claimed by another run meanwhile; its outcome stands")
            return False
        return True

    channel = channels.get(source["channel"])
    message = Message.model_validate(source["message"])
    try:
        if channel is None:
            raise DeliveryError(f"no channel {source['channel']!r}", permanent=True)
        receipt = channel.send(Delivery(key=doc_id, message=message, targets=list(source["target"])))
    except PartialDelivery as partial:
        # Accepted for some targets: this entry is sent (resending would duplicate for them), and the
        # refused targets get an entry of their own that retries, fails and notifies like any other.
        if settle({"status": "sent", "sent_at": iso(now), "receipt": partial.receipt, "last_error": None}):
            report.sent += 1
            report.partial += 1
            _enqueue_rest(client, settings, source, doc_id, partial, now)
        return
    except Exception as error:  # DeliveryError, or a bug in rendering: either way keep the entry
        reason = str(error) if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
        permanent = isinstance(error, DeliveryError) and error.permanent
        retry_after = error.retry_after if isinstance(error, DeliveryError) else None
        report.errors.append(f"{doc_id}: {reason}")
        # Maybe delivered (ambiguous): sending again could post it twice, so the entry stops and an
        # operator decides (look at the channel; `newsradar alerts retry` sends it again).
        final = "unconfirmed" if isinstance(error, DeliveryError) and error.ambiguous else None
        if final is None and (permanent or attempts >= settings.alerts_max_attempts):
            final = "failed"
        if final is not None:
            if settle({"status": final, "last_error": reason}):
                setattr(report, final, getattr(report, final) + 1)
                report.operator_notices += notify_operator(
                    client, settings, doc_id, source, attempts, reason, now
                )
        else:
            wait = retry_after if retry_after is not None else _backoff(settings, attempts)
            not_before = iso(now + timedelta(seconds=wait))
            if settle({"status": "pending", "last_error": reason, "not_before": not_before}):
                report.retrying += 1
        return
    if settle({"status": "sent", "sent_at": iso(now), "receipt": receipt, "last_error": None}):
        report.sent += 1


def _enqueue_rest(
    client: Elasticsearch,
    settings: Settings,
    source: dict[str, Any],
    doc_id: str,
    partial: PartialDelivery,
    now: datetime,
) -> None:
    message = Message.model_validate(source["message"])
    rest = Destination(f"{source['destination']}:rest", str(source["channel"]), list(partial.refused))
    backoff = now + timedelta(seconds=_backoff(settings, 1))
    enqueue(client, settings, message, [rest], now, backoff, operator=bool(source.get("operator")))
    log.warning("%s: %s refused %s; they get an entry of their own", doc_id, rest.kind, partial.refused)


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
