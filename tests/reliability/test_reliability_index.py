"""Indexing faults that used to lose or block work, each against the real node: a document kept for
retry must still alert (once), a document Elasticsearch rejects for good must not block later runs,
two runs must not lose each other's failure entries, and an oversized keyword must not poison a
document."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alertkit import MailSink, free_port, isolated, token
from elasticsearch import Elasticsearch

from alerts.rules import Rule
from alerts.runner import run_once
from alerts.store import RuleSet
from index.failures import FailureStore
from index.indexer import index_articles, index_documents, retry_failed, to_document
from index.mapping import alias_target, articles_alias, drop_articles, ensure_articles_index
from newsradar.article import Article
from newsradar.dates import utcnow
from newsradar.settings import Settings


@pytest.fixture
def cfg(es: Elasticsearch, settings: Settings) -> Iterator[Settings]:
    mine = isolated(settings, alerts_overlap_s=1.0)
    yield mine
    drop_articles(es, mine)
    FailureStore(mine).clear()


def _article(tok: str, n: int, **extra: object) -> Article:
    url = f"https://heise.example/{tok}/{n}"
    return Article(
        id=f"{tok}-{n}",
        url=url,
        canonical_url=url,
        source="heise",
        lang="de",
        title=f"Behörde sperrt App {tok} {n}",
        text=f"Die Behörde sperrt die App {tok}.",
        story_id=f"{tok}-story-{n}",
        event_types=["ban"],
        **extra,  # type: ignore[arg-type]
    )


@contextmanager
def _blocked(es: Elasticsearch, settings: Settings) -> Iterator[None]:
    """Writes answered with 429, as on a full disk (the flood-stage block)."""
    index = alias_target(es, settings) or ensure_articles_index(es, settings)
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True})
    try:
        yield
    finally:
        es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": None})


def test_a_document_kept_for_retry_alerts_once_when_it_lands(es: Elasticsearch, cfg: Settings) -> None:
    """Before: the retried document kept its first `indexed_at`, which the alert watermark had passed
    meanwhile, so its story never alerted."""
    port = free_port()
    cfg = cfg.model_copy(update={"smtp_port": port})
    tok = token()
    rules = RuleSet(
        rules=[
            Rule.model_validate(
                {"name": f"r-{tok}", "owner": "t", "query": tok, "channels": {"email": ["desk@example.org"]}}
            )
        ]
    )
    ensure_articles_index(es, cfg)
    with _blocked(es, cfg):
        kept = index_articles(es, cfg, [_article(tok, 1)], max_attempts=1)
    assert kept.failed and not kept.quarantined  # a transient refusal: kept for the next run
    sink = MailSink(port).start()
    try:
        time.sleep(1.5)
        run_once(es, cfg, rules=rules, now=utcnow())  # nothing indexed yet; the watermark moves on
        time.sleep(1.5)  # now past the watermark's overlap too
        assert retry_failed(es, cfg).indexed == 1
        run_once(es, cfg, rules=rules, now=utcnow())
        assert len(sink.messages) == 1  # the story alerts when its document lands
        index_articles(es, cfg, [_article(tok, 1)])  # re-indexed (a re-crawl, a backfill)
        run_once(es, cfg, rules=rules, now=utcnow())
        assert len(sink.messages) == 1  # never twice
    finally:
        sink.stop()


def test_a_document_rejected_for_good_does_not_block_later_runs(es: Elasticsearch, cfg: Settings) -> None:
    """Before: a permanently rejected document was re-sent by every run and failed every index task."""
    tok = token()
    good, bad = to_document(_article(tok, 1)), {**to_document(_article(tok, 2)), "sentiment": "positive"}
    first = index_documents(es, cfg, [good, bad])
    assert first.indexed == 1 and first.quarantined == 1
    for n in range(3, 6):  # later runs: nothing re-sent, nothing failing
        later = index_articles(es, cfg, [_article(tok, n)])
        assert later.indexed == 1 and not later.failed and later.resubmitted == 0
    entry = FailureStore(cfg).load()[bad["id"]]
    assert entry["quarantined"] and entry["attempts"] == 1 and "strict_dynamic_mapping" in entry["reason"]


def test_two_runs_failing_at_once_keep_every_entry(es: Elasticsearch, cfg: Settings) -> None:
    """Before: each run rewrote the whole failures file, so the slower one dropped the faster one's."""
    toks = [token() for _ in range(4)]
    ensure_articles_index(es, cfg)
    with _blocked(es, cfg):
        runs = [
            threading.Thread(
                target=index_articles,
                args=(es, cfg, [_article(tok, n) for n in range(5)]),
                kwargs={"max_attempts": 2, "initial_backoff": 0.05},
            )
            for tok in toks
        ]
        for run in runs:
            run.start()
        for run in runs:
            run.join(timeout=120)
    kept = FailureStore(cfg).load()
    assert set(kept) == {f"{tok}-{n}" for tok in toks for n in range(5)}
    assert retry_failed(es, cfg).indexed == 20
    assert FailureStore(cfg).load() == {}
    assert es.count(index=articles_alias(cfg))["count"] == 20


def test_an_oversized_keyword_does_not_reject_the_document(es: Elasticsearch, cfg: Settings) -> None:
    """Before: a 40 KB author (a scraping accident) was over Lucene's term limit and the node refused
    the whole article."""
    tok = token()
    huge = _article(tok, 1, authors=["x" * 40_000])
    report = index_articles(es, cfg, [huge])
    assert report.indexed == 1 and not report.failed
    stored = es.get(index=articles_alias(cfg), id=huge.id)["_source"]
    assert len(stored["authors"][0]) == 40_000  # kept in the document, just not indexed as a term
