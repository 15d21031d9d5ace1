"""Crawl state that outlives one crawl: the seen-URL store and the feeds' HTTP validators.

A re-crawl must fetch only what is new — publishers notice (and block) crawlers that re-download
every article every 15 minutes. Both tables live in one SQLite file under the state directory;
writes happen once, at the end of a crawl and after its batch is safely on staging, so a crashed
crawl re-fetches rather than forgets.

Each seen URL and each stored validator remembers the batch that holds the article (the crawl's
output path). A crawl writing the same batch again — a task retried after its commit — does not
count its own batch's URLs as seen and does not send its own validators, so it rebuilds the whole
batch instead of overwriting it with an empty one.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    url TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    batch TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS validators (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    updated TEXT NOT NULL,
    batch TEXT NOT NULL DEFAULT ''
);
"""
_MIGRATIONS = (  # state files written before batches were recorded
    "ALTER TABLE seen ADD COLUMN batch TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE validators ADD COLUMN batch TEXT NOT NULL DEFAULT ''",
)


class CrawlState:
    """Keys are canonical URLs (see `newsradar.urls.canonicalize`); `first_seen` is never overwritten."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30)
        self.db.executescript(_SCHEMA)
        for statement in _MIGRATIONS:
            with contextlib.suppress(sqlite3.OperationalError):  # the column exists already
                self.db.execute(statement)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CrawlState:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def seen_among(self, urls: Iterable[str], batch: str = "") -> set[str]:
        """The URLs already held by a batch other than ``batch``."""
        wanted = list(dict.fromkeys(urls))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT url FROM seen WHERE url IN ({marks}) AND (batch = '' OR batch != ?)", [*chunk, batch]
            )
            found.update(row[0] for row in rows)
        return found

    def is_seen(self, url: str) -> bool:
        return bool(self.seen_among([url]))

    def mark_seen(self, urls: dict[str, str], batch: str = "") -> int:
        """Record `{canonical_url: source}` as held by ``batch``; returns how many were new. A URL
        already recorded keeps its first batch (idempotent: a retried commit changes nothing)."""
        now = datetime.now(UTC).isoformat()
        with self.db:
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO seen (url, source, first_seen, batch) VALUES (?, ?, ?, ?)",
                [(url, source, now, batch) for url, source in urls.items()],
            )
            return self.db.total_changes - before

    def first_seen(self, url: str) -> str | None:
        row = self.db.execute("SELECT first_seen FROM seen WHERE url = ?", (url,)).fetchone()
        return str(row[0]) if row else None

    def validators(self, url: str) -> tuple[str | None, str | None]:
        row = self.db.execute("SELECT etag, last_modified FROM validators WHERE url = ?", (url,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def all_validators(self, batch: str = "") -> dict[str, tuple[str | None, str | None]]:
        """Validators stored by crawls of other batches than ``batch``."""
        rows = self.db.execute(
            "SELECT url, etag, last_modified FROM validators WHERE batch = '' OR batch != ?", (batch,)
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def set_validators(self, values: dict[str, tuple[str | None, str | None]], batch: str = "") -> None:
        now = datetime.now(UTC).isoformat()
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO validators (url, etag, last_modified, updated, batch)"
                " VALUES (?, ?, ?, ?, ?)",
                [(url, etag, modified, now, batch) for url, (etag, modified) in values.items()],
            )

    def counts(self) -> dict[str, int]:
        seen = self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
        validators = self.db.execute("SELECT COUNT(*) FROM validators").fetchone()[0]
        return {"seen": int(seen), "validators": int(validators)}

    def compact(self, older_than: datetime) -> dict[str, int]:
        """Forget seen URLs first seen before `older_than` and validators not refreshed since.

        Feeds list only recent articles, so a URL older than the retention window will not be
        offered again; keeping it forever only grows the file. Returns what was removed.
        """
        cutoff = older_than.astimezone(UTC).isoformat()
        with self.db:
            seen = self.db.execute("DELETE FROM seen WHERE first_seen < ?", (cutoff,)).rowcount
            validators = self.db.execute("DELETE FROM validators WHERE updated < ?", (cutoff,)).rowcount
        self.db.execute("VACUUM")
        return {"seen": int(seen), "validators": int(validators)}
