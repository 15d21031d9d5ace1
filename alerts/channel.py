"""The delivery interface every channel implements (one file per channel: email.py, slack.py).

A channel renders a :class:`~alerts.message.Message` in its own format and sends it to one target.
It raises :class:`DeliveryError` on failure; the outbox decides whether and when to try again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from alerts.message import Message


class DeliveryError(Exception):
    """A failed send. ``retry_after``: the channel said when to come back (Slack 429);
    ``permanent``: trying again cannot help (HTTP 4xx other than 429, bad configuration)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True)
class Delivery:
    """What to send where. ``key`` is stable across retries of the same outbox entry: channels that
    support idempotency (email Message-ID) derive their key from it."""

    key: str
    message: Message
    targets: list[str]


class Channel(ABC):
    kind: str = ""

    @abstractmethod
    def send(self, delivery: Delivery) -> str:
        """Send; return a receipt (Message-ID, HTTP status) for the outbox."""

    @abstractmethod
    def preview(self, message: Message) -> str:
        """The rendered message as text, for ``newsradar alerts test`` (nothing is sent)."""
