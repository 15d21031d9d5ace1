"""Tell operators that something in the pipeline failed, through the same channels as alerts.

Pipeline failures are sent straight away rather than through the outbox: the outbox lives in
Elasticsearch, and Elasticsearch being down is one of the failures operators must hear about.
"""

from __future__ import annotations

import logging

from alerts.channel import Channel, Delivery, DeliveryError
from alerts.channels import default_channels, operator_destinations
from alerts.message import Message
from alerts.state import stable_id
from newsradar.settings import Settings

log = logging.getLogger("newsradar.alerts")


def notify_operators(
    settings: Settings, key: str, subject: str, text: str, channels: dict[str, Channel] | None = None
) -> list[str]:
    """Send one operator notice per configured destination; return the receipts.

    Never raises: a notifier that fails must not hide the failure it reports (it is logged).
    """
    targets = operator_destinations(settings)
    if not targets:
        log.warning("no operator destination configured (NEWSRADAR_OPERATOR_EMAIL / _SLACK): %s", subject)
        return []
    channels = channels or default_channels(settings)
    # Channels take the first line of an operator notice as its subject.
    message = Message(
        alert_id=stable_id("pipeline", key), rule="pipeline", kind="operator", text=f"{subject}\n\n{text}"
    )
    receipts = []
    for destination, kind, recipients in targets:
        try:
            receipts.append(
                channels[kind].send(
                    Delivery(key=f"{message.alert_id}-{destination}", message=message, targets=recipients)
                )
            )
        except (DeliveryError, KeyError, OSError) as error:
            log.error("operator notice to %s failed: %s", destination, error)
    return receipts
