"""Documents Elasticsearch refused, kept on staging until a later run (or an operator) indexes them.

An append-only journal: every indexing run writes its own file of changes
(`<staging>/index-failures/<alias>/<time>-<uuid>.jsonl`) — an entry that failed (again), or the
resolution of one that was indexed since — and never rewrites another run's file, so two process runs
(two workers, a retry beside a scheduled run) cannot lose each other's entries. Reading replays the
files in time order; the maintenance DAG compacts them. It lives on staging rather than in the index
because the index being unreachable is the commonest reason an entry exists.

Entries of kind `story` (a story whose denormalised fields could not be written) come from versions that
kept story facts on every member; the next run resolves them, since nothing is owed any more. A document
that Elasticsearch rejects for good (a 4xx other than 429: a mapping conflict, an oversized field), or
that failed `INDEX_RETRY_LIMIT` times, is *quarantined*: kept and listed (`newsradar index failures`),
but no longer re-sent by every run — a poison document must not fail every later index task. `newsradar
index retry` sends quarantined documents too, once an operator has fixed the cause.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec

from index.mapping import articles_alias
from newsradar.settings import Settings

_STAMP = "%Y%m%dT%H%M%S%f"
INDEX_RETRY_LIMIT = 8  # automatic re-submissions of a transiently failing document before quarantine


def permanent(status: int) -> bool:
    """Rejections that the same document can never pass: client errors other than 429."""
    return 400 <= status < 500 and status != 429


def failure_entry(
    document: dict[str, Any], reason: str, status: int, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    attempts = int((previous or {}).get("attempts", 0)) + 1
    return {
        "id": document["id"],
        "kind": "document",
        "reason": reason,
        "status": status,
        "attempts": attempts,
        "quarantined": permanent(status) or attempts >= INDEX_RETRY_LIMIT,
        "first_failed_at": (previous or {}).get("first_failed_at", now),
        "last_failed_at": now,
        "document": document,
    }


class FailureStore:
    def __init__(self, settings: Settings) -> None:
        self.url = f"{settings.staging.rstrip('/')}/index-failures/{articles_alias(settings)}"
        self.fs, self.root = fsspec.core.url_to_fs(self.url)

    def _files(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        names = [str(path) for path in self.fs.ls(self.root, detail=False)]
        return sorted(name for name in names if name.endswith(".jsonl"))

    def _replay(self, files: list[str]) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for name in files:
            with self.fs.open(name, "r", encoding="utf-8") as handle:
                for line in handle:
                    if not line.strip():
                        continue
                    change = json.loads(line)
                    if change.get("resolved"):
                        entries.pop(change["id"], None)
                    else:
                        entries[change["id"]] = change
        return entries

    def load(self) -> dict[str, dict[str, Any]]:
        """Every open entry (failing or quarantined), the latest state per id."""
        return self._replay(self._files())

    def record(self, changes: Mapping[str, dict[str, Any] | None], name: str | None = None) -> None:
        """Write one run's changes as a new file: an entry, or None for "indexed now, resolved"."""
        if not changes:
            return
        self.fs.makedirs(self.root, exist_ok=True)
        stamp = datetime.now(UTC).strftime(_STAMP)
        path = posixpath.join(self.root, name or f"{stamp}-{uuid.uuid4().hex[:12]}.jsonl")
        partial = path + ".partial"
        with self.fs.open(partial, "w", encoding="utf-8") as handle:
            for key, entry in changes.items():
                line = entry if entry is not None else {"id": key, "resolved": True}
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.fs.mv(partial, path)

    def compact(self, settle: timedelta = timedelta(minutes=10)) -> int:
        """Fold the files older than ``settle`` into one that sorts where the newest of them stood, so
        files written meanwhile still replay after it. Returns how many files were folded."""
        cutoff = (datetime.now(UTC) - settle).strftime(_STAMP)
        files = [name for name in self._files() if posixpath.basename(name) < cutoff]
        if len(files) < 2:
            return 0
        entries = self._replay(files)
        last = posixpath.basename(files[-1]).removesuffix(".jsonl")
        if entries:  # written first: a crash between the two steps leaves duplicates, never a loss
            self.record(entries, name=f"{last}-compacted.jsonl")
        for name in files:
            self.fs.rm(name)
        return len(files)

    def clear(self) -> None:
        if self.fs.exists(self.root):
            self.fs.rm(self.root, recursive=True)
