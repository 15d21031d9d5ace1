"""Retention of the staging store: batches are inputs for re-runs, not an archive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fsspec

from newsradar.dates import aware
from newsradar.settings import Settings


def _modified(info: dict[str, Any]) -> datetime | None:
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return aware(value)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
    return None


def clean_staging(settings: Settings, older_than: datetime) -> list[str]:
    """Delete run batch folders last modified before `older_than`; return what was deleted."""
    root = f"{settings.staging.rstrip('/')}/batches"
    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        return []
    removed = []
    for entry in fs.ls(path, detail=True):
        if entry.get("type") != "directory":
            continue
        newest = max(
            (m for m in (_modified(fs.info(f)) for f in fs.find(entry["name"])) if m is not None),
            default=_modified(entry),
        )
        if newest is not None and newest < older_than:
            fs.rm(entry["name"], recursive=True)
            removed.append(entry["name"])
    return removed
