"""Elasticsearch killed in the middle of indexing, then restarted: nothing lost, nothing duplicated.

The shared node serves every other test, so this one starts a second, throw-away node of its own
(same distribution, own port and home) and kills it with SIGKILL while a batch is being indexed.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alertkit import free_port
from elasticsearch import Elasticsearch
from ledger import Ledger

from index.client import get_client
from index.failures import FailureStore
from index.indexer import index_articles, retry_failed
from index.mapping import articles_alias
from newsradar.article import Article, article_id
from newsradar.settings import Settings
from stack import esnode as node

N = 1500
STORY = 3  # articles per story: every story whole after the retry


@pytest.fixture(scope="module")
def second_node(settings: Settings) -> Iterator[Settings]:
    # The node runs as a system user when we are root: it must be able to traverse its home.
    home = Path(tempfile.mkdtemp(prefix="newsradar-es2-", dir="/var/tmp"))
    home.chmod(0o755)
    cfg = Settings(
        es_url=f"http://127.0.0.1:{free_port()}",
        es_home=home / "es",
        es_heap="512m",
        index_prefix=f"{settings.index_prefix}-es2",
        state_dir=home / "state",
        cache_dir=settings.cache_dir,
    )
    try:
        node.start(cfg)
        yield cfg
    finally:
        node.stop(cfg, timeout=20)
        shutil.rmtree(home, ignore_errors=True)


def _articles() -> list[Article]:
    out = []
    for n in range(N):
        url = f"https://outlet{n % 7}.example/2026/11/article-{n}"
        out.append(
            Article(
                id=article_id(url),
                url=url,
                canonical_url=url,
                source=f"outlet{n % 7}",
                lang="en",
                title=f"Export controls article {n}",
                text=f"Body of article {n}.",
                story_id=f"story-{n // STORY}",
            )
        )
    return out


def _kill_when_indexing(cfg: Settings, threshold: int, killed: list[float]) -> threading.Thread:
    """SIGKILL the node as soon as `threshold` documents reached its primaries: mid-batch, with
    bulk requests in flight."""
    probe = Elasticsearch(cfg.es_url, request_timeout=2, max_retries=0)
    pid = int((cfg.es_home / "run" / "elasticsearch.pid").read_text().strip())

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                stats = probe.indices.stats(index=articles_alias(cfg), metric="indexing")
                done = stats["_all"]["primaries"]["indexing"]["index_total"]
            except Exception:
                done = 0
            if done >= threshold:
                os.kill(pid, signal.SIGKILL)
                killed.append(time.monotonic())
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _stored_ids(client: Elasticsearch, cfg: Settings) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = client.search(
            index=articles_alias(cfg),
            size=1000,
            sort=[{"id": "asc"}],
            search_after=after,
            source_includes=["id"],
            query={"match_all": {}},
        )["hits"]["hits"]
        ids.extend(hit["_source"]["id"] for hit in page)
        if len(page) < 1000:
            return ids
        after = page[-1]["sort"]


def test_node_killed_mid_batch_then_restarted(second_node: Settings, ledger: Ledger) -> None:
    cfg = second_node
    articles = _articles()
    expected = {a.id for a in articles}
    client = get_client(cfg, timeout=10)
    killed: list[float] = []
    watcher = _kill_when_indexing(cfg, threshold=200, killed=killed)

    first = index_articles(client, cfg, articles, chunk_size=100, max_attempts=3, initial_backoff=0.2)
    watcher.join(timeout=5)
    assert killed, "the node was never killed: the batch finished first"
    failed_docs = {doc_id for doc_id, _ in first.failed}
    # Every document is either acknowledged or kept for retry with its reason: none silently dropped.
    assert 0 < first.indexed < N
    assert first.indexed + len(failed_docs) == N
    assert failed_docs <= expected
    kept = FailureStore(cfg).load()
    assert {k for k, e in kept.items() if e["kind"] == "document"} == set(kept) == failed_docs
    assert all("connection failed" in kept[k]["reason"] for k in failed_docs)

    restart = time.monotonic()
    node.start(cfg)
    healthy = time.monotonic()
    retried = retry_failed(client, cfg)  # `newsradar index retry`, same client as before the crash
    recovered = time.monotonic()
    assert retried.failed == []
    assert retried.indexed == len(failed_docs)
    assert FailureStore(cfg).load() == {}

    client.indices.refresh(index=articles_alias(cfg))
    ids = _stored_ids(client, cfg)
    ledger.fault(1)  # the node killed mid-batch
    ledger.documents(N, len(set(ids) & expected))
    assert len(ids) == N == client.count(index=articles_alias(cfg))["count"]
    assert set(ids) == expected  # each id exactly once
    stories = client.search(
        index=articles_alias(cfg), size=0, aggs={"stories": {"terms": {"field": "story_id", "size": N}}}
    )["aggregations"]["stories"]["buckets"]
    assert len(stories) == N // STORY and {b["doc_count"] for b in stories} == {STORY}  # every story whole

    # The task-level retry (the whole batch again) changes nothing either.
    again = index_articles(client, cfg, articles, chunk_size=500)
    assert again.indexed == N and again.failed == []
    client.indices.refresh(index=articles_alias(cfg))
    assert client.count(index=articles_alias(cfg))["count"] == N
    print(
        f"\nkilled after {first.indexed}/{N} acknowledged; rest of the batch kept for retry in "
        f"{restart - killed[0]:.1f}s; restart {healthy - restart:.1f}s, "
        f"retry of {len(failed_docs)} documents {recovered - healthy:.1f}s"
    )
