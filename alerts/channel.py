"""The interface every alert channel implements, one file per channel (``email.py``, ``slack.py``),
registered in ``channels.py``.

A channel declares which field of a rule's ``channels`` it reads (its ``kind``), how those values
become outbox destinations, and where operators' addresses for it are configured; it renders a
:class:`~alerts.message.Message` in its own format and sends it to one destination. It raises
:class:`DeliveryError` on failure; the outbox decides whether and when to try again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from alerts.message import Message
from newsradar.settings import Settings


class DeliveryError(Exception):
    """A failed send. ``retry_after``: the channel said when to come back (Slack 429);
    ``permanent``: trying again cannot help (HTTP 4xx other than 429, bad configuration);
    ``ambiguous``: the message may have arrived (a read timeout after the request went out), so
    sending again could duplicate it."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent
        self.ambiguous = ambiguous


class PartialDelivery(Exception):
    """Accepted for some targets, refused for others (an SMTP server refusing some recipients):
    the entry counts as sent, and the ``refused`` targets are retried on their own."""

    def __init__(self, receipt: str, refused: list[str], reason: str) -> None:
        super().__init__(reason)
        self.receipt = receipt
        self.refused = refused


class Destination(NamedTuple):
    """One outbox entry's address: a stable key within the alert, the channel, and its targets."""

    key: str  # "email", "slack:<connection>"
    kind: str
    targets: list[str]


@dataclass(frozen=True)
class Delivery:
    """What to send where. ``key`` is stable across retries of the same outbox entry: channels that
    support idempotency (email Message-ID) derive their key from it."""

    key: str
    message: Message
    targets: list[str]


class Channel(ABC):
    kind: ClassVar[str]  # also the name of the rule field `channels.<kind>` it reads
    operator_setting: ClassVar[str]  # the settings field with operators' targets (comma-separated)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    @abstractmethod
    def destinations(cls, targets: list[str]) -> list[Destination]:
        """Outbox destinations for a rule's (or the operators') targets of this channel."""

    @abstractmethod
    def send(self, delivery: Delivery) -> str:
        """Send; return a receipt (Message-ID, HTTP status) for the outbox."""

    @abstractmethod
    def preview(self, message: Message) -> str:
        """The rendered message as text, for ``newsradar alerts test`` (nothing is sent)."""
