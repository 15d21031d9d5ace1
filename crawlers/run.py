"""Run a crawl as a subprocess.

Scrapy's Twisted reactor cannot be restarted in one process, which is exactly what a scheduler
or `dag.test()` would do; a subprocess per crawl sidesteps that and isolates crashes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsradar.settings import PROJECT_ROOT


@dataclass
class CrawlResult:
    output: Path
    articles: int
    stats: dict[str, Any]


class CrawlError(RuntimeError):
    pass


def run_feed_crawl(
    feeds: list[str],
    output: Path,
    *,
    source: str = "unknown",
    lang: str | None = None,
    country: str | None = None,
    extra_settings: dict[str, str] | None = None,
    timeout: float = 1800,
) -> CrawlResult:
    stats_file = output.with_suffix(".stats.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "scrapy", "crawl", "feed", "-a", f"feeds={','.join(feeds)}"]
    command += ["-a", f"source={source}"]
    if lang:
        command += ["-a", f"lang={lang}"]
    if country:
        command += ["-a", f"country={country}"]
    settings = {
        "NEWSRADAR_OUTPUT": str(output),
        "NEWSRADAR_STATS_FILE": str(stats_file),
        **(extra_settings or {}),
    }
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawlers.settings"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
    proc = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not stats_file.is_file():
        raise CrawlError(f"crawl failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    stats = json.loads(stats_file.read_text())
    articles = sum(1 for _ in output.open(encoding="utf-8")) if output.is_file() else 0
    return CrawlResult(output=output, articles=articles, stats=stats)
