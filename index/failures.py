"""Documents Elasticsearch refused, kept on staging until a later run indexes them.

One JSON-lines file per alias (`<staging>/index-failures/<alias>.jsonl`), keyed by document id: a
document that fails again updates its entry (attempt count, last reason), one that succeeds — or is
replaced by a fresher version of the same article — leaves the file. Entries of kind `story` stand
for a story whose denormalised fields could not be written. Any fsspec URL works as staging.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import fsspec

from index.mapping import articles_alias
from newsradar.settings import Settings


def failure_entry(
    document: dict[str, Any], reason: str, status: int, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": document["id"],
        "kind": "document",
        "reason": reason,
        "status": status,
        "attempts": int((previous or {}).get("attempts", 0)) + 1,
        "first_failed_at": (previous or {}).get("first_failed_at", now),
        "last_failed_at": now,
        "document": document,
    }


def story_failure(story_id: str, reason: str) -> dict[str, Any]:
    return {
        "id": f"story:{story_id}",
        "kind": "story",
        "story_id": story_id,
        "reason": reason,
        "last_failed_at": datetime.now(UTC).isoformat(),
    }


class FailureStore:
    def __init__(self, settings: Settings) -> None:
        self.url = f"{settings.staging.rstrip('/')}/index-failures/{articles_alias(settings)}.jsonl"

    def load(self) -> dict[str, dict[str, Any]]:
        fs, path = fsspec.core.url_to_fs(self.url)
        if not fs.exists(path):
            return {}
        entries: dict[str, dict[str, Any]] = {}
        with fs.open(path, "r", encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    entry = json.loads(line)
                    entries[entry["id"]] = entry
        return entries

    def save(self, entries: dict[str, dict[str, Any]]) -> None:
        """Atomic replace where the filesystem allows; an empty store removes the file."""
        fs, path = fsspec.core.url_to_fs(self.url)
        if not entries:
            if fs.exists(path):
                fs.rm(path)
            return
        fs.makedirs(fs._parent(path), exist_ok=True)
        partial = path + ".partial"
        with fs.open(partial, "w", encoding="utf-8") as handle:
            for entry in entries.values():
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        fs.mv(partial, path)
