"""Times, the one way every part reads and writes them: aware UTC inside, ISO 8601 on the wire.

A naive time (no zone) is taken as UTC (or the source's zone) wherever it comes from, so comparing two
stored times can never fail on "offset-naive and offset-aware". Publication times from pages, feeds
and files (:func:`parse_published`), ``--since`` values, query filters and alert windows share this
one module.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as fixed_offset
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$")
_LONGEST_DURATION_S = 100 * 31_557_600.0  # a century: anything longer is a typo, not a window
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """The same instant with a zone: naive times are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return aware(moment).isoformat()


def iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def parse_iso(value: str) -> datetime:
    """ISO 8601 (``Z`` allowed), aware; ValueError names the value."""
    try:
        return aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time") from None


def parse_iso_or_none(value: object) -> datetime | None:
    """A stored time back (None, "" and unparsable values are None: stored data never stops a run)."""
    if not value:
        return None
    try:
        return parse_iso(str(value))
    except ValueError:
        return None


def earlier(a: str | None, b: str | None) -> str | None:
    """The earlier of two stored ISO times (either may be missing)."""
    if not a or not b:
        return a or b
    return a if parse_iso(a) <= parse_iso(b) else b


def parse_duration(value: str) -> timedelta:
    """``90s``, ``30m``, ``36h``, ``7d``, ``2w``."""
    match = _DURATION.match(value.strip().lower())
    if not match:
        raise ValueError(f"{value!r} is not a duration: use a number and s, m, h, d or w (e.g. 7d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > _LONGEST_DURATION_S:
        raise ValueError(f"{value!r} reaches back further than {_LONGEST_DURATION_S // 31_557_600:.0f} years")
    return timedelta(seconds=seconds)


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """A point in time: a date (``2026-11-01``), an ISO 8601 time, or a duration back from now (``24h``)."""
    text = value.strip()
    if _DURATION.match(text.lower()):
        return (now or utcnow()) - parse_duration(text)
    try:
        return parse_iso(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a date (2026-11-01), a time (2026-11-01T08:00+01:00) "
            "nor a duration (90m, 24h, 7d, 2w)"
        ) from None


# ------------------------------------------------------------------------------------------ publication

# What publishers emit besides ISO 8601: "2003-5-29 09:07", "2024/05/16", "2005年1月2日 14:30",
# "16.03.2023". Exported for scanning visible page text (crawlers.extract).
ISO_LIKE = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?\s*"
    r"(Z|[+-]\d{2}:?\d{2})?)?"
)
ZH_DATE = re.compile(
    r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日(?:\s*(\d{1,2})\s*[:：时]\s*(\d{1,2})"
    r"(?:\s*[:：分]\s*(\d{1,2}))?)?"
)
DMY_DATE = re.compile(r"\b(\d{1,2})\.\s?(\d{1,2})\.\s?((?:19|20)\d{2})(?:,?\s+(\d{1,2}):(\d{2}))?")
_MAX_DATE_CHARS = 200  # a date never needs more; longer input is a field with the wrong content
_EARLIEST_YEAR = 1990


def zone(name: str | None) -> tzinfo:
    """The named time zone (a source's ``timezone``), UTC when absent or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.debug("unknown time zone %r, assuming UTC", name)
    return UTC


def make_datetime(y: str, mo: str, d: str, h: str | None, mi: str | None, s: str | None) -> datetime | None:
    """A naive datetime from regex groups, None when they are no valid date."""
    try:
        return datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        return None


def _offset(value: str) -> tzinfo:
    if value == "Z":
        return UTC
    digits = value[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return fixed_offset(-delta if value[0] == "-" else delta)


def _natural(text: str, lang: str | None, now: datetime) -> datetime | None:
    """Month names, "vor 3 Stunden", "3小时前", RFC 822: dateparser, restricted to our languages."""
    import dateparser

    languages = ["de", "en", "zh"]
    if lang in languages:
        languages.remove(lang)
        languages.insert(0, lang)
    try:
        found: datetime | None = dateparser.parse(
            text,
            languages=languages,
            settings={"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DAY_OF_MONTH": "first"},
        )
    except (ValueError, OverflowError, TypeError):
        return None
    return found


def parse_published(
    value: object, tz: str | None = None, lang: str | None = None, now: datetime | None = None
) -> datetime | None:
    """A publication time from whatever a page, feed or file says, as aware UTC-comparable datetime.

    ISO 8601 first (fast), then the forms above, then natural-language dates. A time without a zone
    is in ``tz`` (the source's zone; default UTC). Epoch seconds (or milliseconds) as numbers are
    accepted. Anything else, or a year before 1990 or after next year, is None: unknown, never a guess.
    """
    now = now or utcnow()
    result: datetime | None = None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value) / 1000.0 if value > 1e11 else float(value)
        try:
            result = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, datetime):
        result = value
    else:
        text = str(value).strip()[:_MAX_DATE_CHARS]
        if not text:
            return None
        try:
            result = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            if (m := ISO_LIKE.search(text)) is not None:
                result = make_datetime(*m.group(1, 2, 3, 4, 5, 6))
                if result is not None and m.group(7):
                    result = result.replace(tzinfo=_offset(m.group(7)))
            elif (m := ZH_DATE.search(text)) is not None:
                result = make_datetime(*m.group(1, 2, 3, 4, 5, 6))
            else:
                result = _natural(text, lang, now)
    if result is None:
        return None
    if result.tzinfo is None:
        result = result.replace(tzinfo=zone(tz))
    if not _EARLIEST_YEAR <= result.year <= now.year + 1:
        return None
    return result
