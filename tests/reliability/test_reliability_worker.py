"""A worker killed mid-task (SIGKILL to the task's whole process group, as when a machine or a Celery
worker dies): the re-run of the same task finishes the work without duplicates or losses.

* crawl: the batch under its final name is only ever complete; pages of the killed run are not marked
  seen (so the re-run fetches them again instead of forgetting them); the re-run's batch holds every
  article once, including those the killed run had extracted.
* index: a batch indexed again after the kill holds every document exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from alertkit import isolated
from elasticsearch import Elasticsearch
from ledger import Ledger

from crawlers.catalog import Source, sample_catalog
from crawlers.run import run_crawl
from crawlers.state import CrawlState
from index.indexer import index_articles
from index.mapping import articles_alias
from newsradar.article import Article, article_id
from newsradar.batches import write_articles
from newsradar.settings import PROJECT_ROOT, Settings
from stack.replay import SAMPLE_SITE, ReplayServer

MANIFEST = json.loads((SAMPLE_SITE / "MANIFEST.json").read_text(encoding="utf-8"))
FAST = {"AUTOTHROTTLE_ENABLED": "False", "LOG_LEVEL": "WARNING", "DOWNLOAD_TIMEOUT": "10"}
SLOW_PAGES = 6

CRAWL_TASK = """
import json, sys
from crawlers.catalog import Source
from crawlers.run import run_crawl
sources = [Source.model_validate(s) for s in json.load(open(sys.argv[1]))]
run_crawl(sources, sys.argv[2], extra_settings=json.loads(sys.argv[3]))
"""

INDEX_TASK = """
import sys
from index.client import get_client
from index.indexer import index_articles
from newsradar.batches import read_articles
from newsradar.settings import get_settings
settings = get_settings()
index_articles(get_client(settings), settings, read_articles(sys.argv[1]), chunk_size=50)
"""


def _task(code: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A task process in its own process group, like a worker's task runner and its children."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _complete_lines(path: Path) -> list[Article]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):  # the line being written when the process died
            out.append(Article.model_validate_json(line))
    return out


def test_crawl_killed_mid_run_then_rerun(tmp_path: Path, ledger: Ledger) -> None:
    site = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE, site)
    # Slow pages keep the crawl busy long enough to be killed with articles already extracted.
    slow = "".join(
        f"<item><title>s{n}</title><link>{{{{BASE_URL}}}}/_fault/slow/2?n={n}</link></item>"
        for n in range(SLOW_PAGES)
    )
    (site / "slow.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>s</title>{slow}</channel></rss>'
    )
    state_dir = tmp_path / "state"
    settings = Settings(state_dir=state_dir)
    output = tmp_path / "staging" / "batches" / "run-1" / "raw" / "sample.jsonl"
    partial = Path(str(output) + ".partial")
    with ReplayServer(site) as server:
        sources = [
            *sample_catalog(server.base_url, site),
            Source(name="slow", lang="en", feeds=[server.url("slow.xml")]),
        ]
        sources_file = tmp_path / "sources.json"
        sources_file.write_text(json.dumps([s.model_dump(mode="json") for s in sources]))
        proc = _task(
            CRAWL_TASK,
            [str(sources_file), str(output), json.dumps(FAST)],
            {"NEWSRADAR_STATE_DIR": str(state_dir)},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if partial.exists() and len(_complete_lines(partial)) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the crawl ended before it could be killed: {proc.stderr}"
        _kill(proc)
        time.sleep(0.5)  # let the orphaned sockets close

        # The killed run left only its partial file: no batch under the final name, no stats.
        assert not output.exists()
        assert not Path(str(output).removesuffix(".jsonl") + ".stats.json").exists()
        extracted_before_kill = _complete_lines(partial)
        assert len(extracted_before_kill) >= 3
        with CrawlState(settings.crawl_state_path) as state:
            assert state.counts() == {"seen": 0, "validators": 0}  # nothing marked that no batch holds

        # The task's retry: same sources, same output.
        result = run_crawl(sources, output, settings=settings, extra_settings=FAST)

    articles = _complete_lines(output)
    paths = {urlsplit(a.url).path for a in articles}
    expected = {m["path"] for m in MANIFEST if m["in_feed"] and not m["robots_disallowed"]}
    ledger.fault(1)  # the crawl process killed
    ledger.documents(len(expected), len(expected & paths))
    assert result.articles == len(articles) and not partial.exists()
    assert max(Counter(a.id for a in articles).values()) == 1
    assert {a.id for a in extracted_before_kill} <= {a.id for a in articles}
    assert expected <= paths
    with CrawlState(settings.crawl_state_path) as state:
        assert all(state.is_seen(a.canonical_url) for a in articles)


def _doc(n: int) -> Article:
    url = f"https://kill.example/2026/{n}"
    return Article(
        id=article_id(url),
        url=url,
        canonical_url=url,
        source="kill",
        lang="de",
        title=f"Exportkontrollen Nummer {n}",
        text=f"Text {n}.",
    )


def test_index_task_killed_then_rerun(
    es: Elasticsearch, settings: Settings, tmp_path: Path, ledger: Ledger
) -> None:
    cfg = isolated(settings, state_dir=tmp_path / "state")
    n = 2000
    batch = tmp_path / "07-dedupe.jsonl"
    write_articles(str(batch), (_doc(i) for i in range(n)))
    proc = _task(
        INDEX_TASK,
        [str(batch)],
        {"NEWSRADAR_INDEX_PREFIX": cfg.index_prefix, "NEWSRADAR_STATE_DIR": str(cfg.state_dir)},
    )
    alias = articles_alias(cfg)
    done = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = es.indices.stats(index=alias, metric="indexing")["_all"]["primaries"]["indexing"][
                "index_total"
            ]
        except Exception:
            done = 0
        if done >= 200:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the index task ended before it could be killed"
    _kill(proc)
    es.indices.refresh(index=alias)
    partial_count = es.count(index=alias)["count"]
    assert 0 < partial_count < n

    report = index_articles(es, cfg, [_doc(i) for i in range(n)])  # the task's retry
    assert report.indexed == n and report.failed == []
    es.indices.refresh(index=alias)
    ledger.fault(1)  # the index task killed
    ledger.documents(n, es.count(index=alias)["count"])
    assert es.count(index=alias)["count"] == n
    dupes = es.search(index=alias, size=0, aggs={"ids": {"terms": {"field": "id", "min_doc_count": 2}}})
    assert dupes["aggregations"]["ids"]["buckets"] == []
