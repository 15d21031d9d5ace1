"""When to poll each source next: hot sources every minute, quiet ones less and less often.

News breaks at any minute, so waiting for a fixed crawl every ten minutes made the crawl schedule most
of an alert's delay. Instead the crawl DAG runs every minute and polls only the sources that are due:

* a poll that found new articles makes its source *hot*: next poll after ``min_interval`` (one
  minute: never more than one poll per source per minute; an unchanged feed then costs one 304);
* a poll that found nothing stretches the interval by ``backoff``, up to ``max_interval``;
* a failed poll (site down, broken feed) backs off twice as fast, so a dead site is not hammered;
* the due sources of one host are polled together, in one crawl (one Scrapy process), so Scrapy's
  per-domain limits (``NEWSRADAR_CRAWL_CONCURRENCY_PER_DOMAIN``, AutoThrottle, robots.txt delays)
  hold for the host as a whole: the per-host politeness budget is never exceeded by two crawls of the
  same host at once.

The schedule lives in the crawl state file next to the seen URLs, so it survives restarts and every
crawl task of one machine shares it. ``newsradar sources schedule`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from crawlers.catalog import Source
from crawlers.state import CrawlState
from newsradar.dates import iso, parse_iso, utcnow
from newsradar.settings import Settings


@dataclass(frozen=True)
class Policy:
    min_interval: float = 60.0
    max_interval: float = 240.0
    backoff: float = 1.5
    lease: float = 1800.0  # a source handed to a crawl counts as polling for this long at most


@dataclass(frozen=True)
class Poll:
    source: str
    next_at: datetime
    interval_s: float
    last_at: datetime | None = None
    last_new: int = 0
    last_outcome: str = ""  # new | unchanged | failed | polling
    quiet_polls: int = 0


def policy_from(settings: Settings) -> Policy:
    return Policy(
        min_interval=settings.crawl_poll_min_s,
        max_interval=settings.crawl_poll_max_s,
        backoff=settings.crawl_poll_backoff,
        lease=settings.crawl_source_timeout + 120,
    )


def host(source: Source) -> str:
    """The host a source's polls go to (its first feed, sitemap or listing page)."""
    for url in (*source.feeds, *source.sitemaps, *source.listing_pages, source.homepage or ""):
        if url:
            return (urlsplit(url).hostname or "").lower()
    return source.name


def _row(values: tuple[object, ...]) -> Poll:
    source, next_at, interval, last_at, last_new, last_outcome, quiet = values
    return Poll(
        source=str(source),
        next_at=parse_iso(str(next_at)),
        interval_s=float(interval),  # type: ignore[arg-type]
        last_at=parse_iso(str(last_at)) if last_at else None,
        last_new=int(last_new),  # type: ignore[call-overload]
        last_outcome=str(last_outcome or ""),
        quiet_polls=int(quiet),  # type: ignore[call-overload]
    )


class PollSchedule:
    def __init__(self, state: CrawlState, policy: Policy | None = None) -> None:
        self.db = state.db
        self.policy = policy or Policy()
        with self.db:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS polls ("
                " source TEXT PRIMARY KEY, next_at TEXT NOT NULL, interval_s REAL NOT NULL,"
                " last_at TEXT, last_new INTEGER NOT NULL DEFAULT 0, last_outcome TEXT,"
                " quiet_polls INTEGER NOT NULL DEFAULT 0)"
            )

    def get(self, name: str) -> Poll | None:
        row = self.db.execute(
            "SELECT source, next_at, interval_s, last_at, last_new, last_outcome, quiet_polls"
            " FROM polls WHERE source = ?",
            (name,),
        ).fetchone()
        return _row(row) if row else None

    def all(self) -> list[Poll]:
        rows = self.db.execute(
            "SELECT source, next_at, interval_s, last_at, last_new, last_outcome, quiet_polls"
            " FROM polls ORDER BY next_at"
        )
        return [_row(row) for row in rows]

    def _put(self, poll: Poll) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO polls"
                " (source, next_at, interval_s, last_at, last_new, last_outcome, quiet_polls)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    poll.source,
                    iso(poll.next_at),
                    poll.interval_s,
                    iso(poll.last_at) if poll.last_at else None,
                    poll.last_new,
                    poll.last_outcome,
                    poll.quiet_polls,
                ),
            )

    def due(self, sources: Sequence[Source], now: datetime | None = None) -> list[list[Source]]:
        """The sources to poll now, grouped by host (one crawl each), and marked as being polled so an
        overlapping run does not take them too. Never-polled sources are due."""
        now = now or utcnow()
        by_host: dict[str, list[Source]] = {}
        for source in sources:
            poll = self.get(source.name)
            if poll is not None and poll.next_at > now:
                continue
            by_host.setdefault(host(source), []).append(source)
            self.start(source.name, now)
        return [by_host[key] for key in sorted(by_host)]

    def start(self, name: str, now: datetime | None = None) -> None:
        """Mark a source as being polled (a lease: a crawl that dies does not block it for good)."""
        now = now or utcnow()
        poll = self.get(name) or Poll(name, now, self.policy.min_interval)
        self._put(
            Poll(
                name,
                now + timedelta(seconds=self.policy.lease),
                poll.interval_s,
                poll.last_at,
                poll.last_new,
                "polling",
                poll.quiet_polls,
            )
        )

    def record(self, name: str, new_articles: int, failed: bool = False, now: datetime | None = None) -> Poll:
        """The outcome of a poll; returns the source's next poll."""
        now = now or utcnow()
        policy = self.policy
        previous = self.get(name)
        interval = previous.interval_s if previous else policy.min_interval
        quiet = previous.quiet_polls if previous else 0
        if new_articles > 0:
            interval, outcome, quiet = policy.min_interval, "new", 0
        elif failed:
            interval, outcome, quiet = interval * policy.backoff * policy.backoff, "failed", quiet + 1
        else:
            interval, outcome, quiet = interval * policy.backoff, "unchanged", quiet + 1
        interval = min(policy.max_interval, max(policy.min_interval, interval))
        poll = Poll(name, now + timedelta(seconds=interval), interval, now, new_articles, outcome, quiet)
        self._put(poll)
        return poll

    def forget(self, names: Iterable[str]) -> None:
        with self.db:
            self.db.executemany("DELETE FROM polls WHERE source = ?", [(name,) for name in names])
