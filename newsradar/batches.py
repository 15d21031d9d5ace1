"""Batches of articles on the staging store, passed between stages by reference (a path or URL).

Any fsspec URL works as the staging root (a local path by default, s3://... in production), so
no stage ever pushes article bodies through the scheduler's metadata database.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Iterator

import fsspec

from newsradar.article import Article
from newsradar.settings import Settings


def batch_dir(settings: Settings, run_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return f"{settings.staging.rstrip('/')}/batches/{safe}"


def read_articles(url: str) -> Iterator[Article]:
    with fsspec.open(url, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield Article.model_validate_json(line)


def write_articles(url: str, articles: Iterable[Article]) -> int:
    """Write atomically where the filesystem allows: readers never see a half-written batch."""
    fs, path = fsspec.core.url_to_fs(url)
    partial = path + ".partial"
    fs.makedirs(posixpath.dirname(path), exist_ok=True)  # fsspec paths are posix-style
    count = 0
    with fs.open(partial, "w", encoding="utf-8") as handle:
        for article in articles:
            handle.write(json.dumps(article.model_dump(mode="json"), ensure_ascii=False) + "\n")
            count += 1
    fs.mv(partial, path)
    return count


def raw_batches(settings: Settings, run_id: str) -> list[str]:
    """The raw article files a crawl run wrote, one per source with new articles."""
    fs, root = fsspec.core.url_to_fs(f"{batch_dir(settings, run_id)}/raw")
    if not fs.exists(root):
        return []
    protocol = settings.staging.split("://", 1)[0] + "://" if "://" in settings.staging else ""
    return sorted(protocol + str(path) for path in fs.glob(f"{root}/*.jsonl"))
