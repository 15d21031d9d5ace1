"""The alert channels, registered in one place: a new channel is one file and one line here, plus its
field in the rule schema (``alerts.rules.Channels``, checked against this registry by the tests)."""

from __future__ import annotations

from alerts.channel import Channel, Destination
from alerts.email import EmailChannel
from alerts.rules import Rule
from alerts.slack import SlackChannel
from newsradar.settings import Settings

CHANNELS: dict[str, type[Channel]] = {cls.kind: cls for cls in (EmailChannel, SlackChannel)}


def default_channels(settings: Settings) -> dict[str, Channel]:
    """One configured instance of every channel."""
    return {kind: cls(settings) for kind, cls in CHANNELS.items()}


def destinations(rule: Rule) -> list[Destination]:
    found: list[Destination] = []
    for kind, cls in CHANNELS.items():
        targets = list(getattr(rule.channels, kind))
        if targets:
            found.extend(cls.destinations(targets))
    return found


def operator_destinations(settings: Settings) -> list[Destination]:
    """Where notices about the pipeline itself go (``NEWSRADAR_OPERATOR_EMAIL`` / ``_SLACK``)."""
    found: list[Destination] = []
    for cls in CHANNELS.values():
        configured = str(getattr(settings, cls.operator_setting) or "")
        targets = [part.strip() for part in configured.split(",") if part.strip()]
        if targets:
            found.extend(cls.destinations(targets))
    return found
