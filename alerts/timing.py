"""Clock arithmetic of rules: digest periods, quiet hours, `--since 7d`. All in the rule's own
time zone, so "daily 08:00 Europe/Berlin" stays 08:00 across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.rules import QuietHours, Schedule

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def last_due(schedule: Schedule, now: datetime) -> datetime:
    """The most recent scheduled instant at or before ``now``: the digest period that is due."""
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    at = _hhmm(schedule.at)
    if schedule.every == "hour":
        candidate = local.replace(minute=at.minute, second=0, microsecond=0)
        if candidate > local:
            candidate -= timedelta(hours=1)
        return candidate.astimezone(UTC)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if schedule.every == "week":
        candidate -= timedelta(days=(local.weekday() - _WEEKDAYS.index(schedule.weekday)) % 7)
        step = timedelta(days=7)
    else:
        step = timedelta(days=1)
    if candidate > local:
        candidate = datetime.combine((candidate - step).date(), at, tzinfo=zone)
    return candidate.astimezone(UTC)


def quiet_until(quiet: QuietHours | None, now: datetime) -> datetime | None:
    """When ``now`` falls inside the quiet hours, the instant they end (held alerts go out then)."""
    if quiet is None:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    start, end = _hhmm(quiet.start), _hhmm(quiet.end)
    current = local.time().replace(second=0, microsecond=0, tzinfo=None)
    if start == end:
        return None
    inside = start <= current < end if start < end else (current >= start or current < end)
    if not inside:
        return None
    end_day = local.date() if current < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
