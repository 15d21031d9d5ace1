"""Run a crawl as one Scrapy subprocess, for any number of sources.

Scrapy's Twisted reactor cannot be restarted in one process, which is exactly what a scheduler
or `dag.test()` would do; a subprocess per crawl sidesteps that and isolates crashes. All selected
sources share the subprocess (one scheduler, one dedup set, per-domain politeness across sources);
the pipeline DAG calls it once per source so each source is its own task.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec

from crawlers.catalog import Source
from newsradar.batches import batch_dir
from newsradar.settings import PROJECT_ROOT, Settings, get_settings

SPIDERS = {"news", "feed", "sitemap", "listing"}


@dataclass
class CrawlResult:
    output: str
    stats_file: str
    articles: int
    stats: dict[str, Any]
    log: str = ""


class CrawlError(RuntimeError):
    pass


def stats_path(output: str) -> str:
    return re.sub(r"\.jsonl$", "", output) + ".stats.json"


def default_output(settings: Settings, run_id: str, name: str = "articles") -> str:
    """`<staging>/batches/<run_id>/raw/<name>.jsonl`: one folder per run, passed on by reference."""
    return f"{batch_dir(settings, run_id)}/raw/{name}.jsonl"


def new_run_id() -> str:
    return "crawl-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def run_crawl(
    sources: list[Source],
    output: str | Path,
    *,
    spider: str = "news",
    since: datetime | None = None,
    settings: Settings | None = None,
    extra_settings: dict[str, str] | None = None,
    timeout: float | None = None,
) -> CrawlResult:
    """Crawl `sources` in one Scrapy subprocess; articles go to `output` (path or fsspec URL)."""
    if spider not in SPIDERS:
        raise ValueError(f"unknown spider {spider!r}; one of {sorted(SPIDERS)}")
    if not sources:
        raise ValueError("no sources to crawl")
    settings = settings or get_settings()
    output = str(output)
    stats_file = stats_path(output)
    fs, stats_fs_path = fsspec.core.url_to_fs(stats_file)
    if fs.exists(stats_fs_path):
        fs.rm(stats_fs_path)
    with tempfile.TemporaryDirectory(prefix="newsradar-crawl-") as tmp:
        sources_file = Path(tmp) / "sources.json"
        sources_file.write_text(json.dumps([s.model_dump(mode="json") for s in sources], ensure_ascii=False))
        command = [sys.executable, "-m", "crawlers.launch", spider, "-a", f"sources_file={sources_file}"]
        if since is not None:
            command += ["-a", f"since={since.isoformat()}"]
        scrapy_settings = {
            "NEWSRADAR_OUTPUT": output,
            "NEWSRADAR_STATS_FILE": stats_file,
            "NEWSRADAR_STATE_DB": str(settings.crawl_state_path),
            "NEWSRADAR_REPLAY_URL": settings.replay_url,
            **(extra_settings or {}),
        }
        for key, value in scrapy_settings.items():
            command += ["-s", f"{key}={value}"]
        env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawlers.settings"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
        try:
            proc = subprocess.run(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout or settings.crawl_timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise CrawlError(f"crawl did not finish within {error.timeout:.0f}s") from error
    if proc.returncode != 0 or not fs.exists(stats_fs_path):
        raise CrawlError(f"crawl failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    with fsspec.open(stats_file, "rt", encoding="utf-8") as handle:
        stats = json.load(handle)
    with fsspec.open(output, "rt", encoding="utf-8") as handle:
        articles = sum(1 for line in handle if line.strip())
    return CrawlResult(output=output, stats_file=stats_file, articles=articles, stats=stats, log=proc.stderr)
