"""Crawl state that outlives one crawl: the seen-URL store and the feeds' HTTP validators.

A re-crawl must fetch only what is new — publishers notice (and block) crawlers that re-download
every article every 15 minutes. Both tables live in one SQLite file under the state directory;
writes happen once, at the end of a crawl and after its batch is safely on staging, so a crashed
crawl re-fetches rather than forgets.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    url TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS validators (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    updated TEXT NOT NULL
);
"""


class CrawlState:
    """Keys are canonical URLs (see `newsradar.urls.canonicalize`); `first_seen` is never overwritten."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30)
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CrawlState:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def seen_among(self, urls: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(urls))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT url FROM seen WHERE url IN ({marks})", chunk)
            found.update(row[0] for row in rows)
        return found

    def is_seen(self, url: str) -> bool:
        return bool(self.seen_among([url]))

    def mark_seen(self, urls: dict[str, str]) -> int:
        """Record `{canonical_url: source}`; returns how many were new."""
        now = datetime.now(UTC).isoformat()
        with self.db:
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO seen (url, source, first_seen) VALUES (?, ?, ?)",
                [(url, source, now) for url, source in urls.items()],
            )
            return self.db.total_changes - before

    def first_seen(self, url: str) -> str | None:
        row = self.db.execute("SELECT first_seen FROM seen WHERE url = ?", (url,)).fetchone()
        return str(row[0]) if row else None

    def validators(self, url: str) -> tuple[str | None, str | None]:
        row = self.db.execute("SELECT etag, last_modified FROM validators WHERE url = ?", (url,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def all_validators(self) -> dict[str, tuple[str | None, str | None]]:
        rows = self.db.execute("SELECT url, etag, last_modified FROM validators")
        return {row[0]: (row[1], row[2]) for row in rows}

    def set_validators(self, values: dict[str, tuple[str | None, str | None]]) -> None:
        now = datetime.now(UTC).isoformat()
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO validators (url, etag, last_modified, updated) VALUES (?, ?, ?, ?)",
                [(url, etag, modified, now) for url, (etag, modified) in values.items()],
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
