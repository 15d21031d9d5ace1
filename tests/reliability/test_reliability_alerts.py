"""Channel outages over several alerting runs (`alerts.runner.run_once`, as the alerts DAG calls it):
a 429 storm on the Slack webhook, SMTP refusing connections for a while, an outage longer than the
retry budget. Every alert is delivered exactly once after recovery, none is lost.

Single-run cases (one 429 honoured within a run, SMTP down for one run, 5xx retried, a crash between
send and record) are in tests/test_alert_delivery.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alertkit import MailSink, WebhookServer, article, free_port, index_articles, isolated, token
from elasticsearch import Elasticsearch

from alerts.delivery import retry
from alerts.rules import Rule
from alerts.runner import run_once
from alerts.state import search_all
from alerts.store import RuleSet
from index.mapping import outbox_index
from newsradar.settings import Settings

STORIES = 3


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.stop()


def _rules(tok: str, *, email: bool, slack: bool) -> RuleSet:
    channels: dict[str, list[str]] = {}
    if email:
        channels["email"] = ["desk@example.org"]
    if slack:
        channels["slack"] = [f"team_{tok}"]
    rule = Rule.model_validate({"name": f"r-{tok}", "owner": "t", "query": tok, "channels": channels})
    return RuleSet(rules=[rule])


def _stories(es: Elasticsearch, cfg: Settings, tok: str) -> list[str]:
    """Three stories matching the rule; returns a marker per story that its message carries."""
    markers = [f"{tok}m{n}" for n in range(STORIES)]
    index_articles(
        es, cfg, [article(f"{tok}-s{n}", "heise", "de", f"Verbot {tok} {m}") for n, m in enumerate(markers)]
    )
    return markers


def _outbox(es: Elasticsearch, cfg: Settings) -> list[dict[str, Any]]:
    es.indices.refresh(index=outbox_index(cfg))
    return [h["_source"] for h in search_all(es, outbox_index(cfg), {"match_all": {}}, [{"doc_id": "asc"}])]


def _marker_counts(texts: list[str], markers: list[str]) -> Counter[str]:
    return Counter(m for text in texts for m in markers if m in text)


def test_slack_429_storm_over_several_runs(
    es: Elasticsearch, settings: Settings, hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """429 with Retry-After 120 s for seven posts in a row: no post before the advertised time,
    then each story exactly once."""
    cfg = isolated(settings, slack_max_retries=1)
    tok = token()
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    storm = 7
    hook.script = [(429, {"Retry-After": "120"})] * storm
    markers = _stories(es, cfg, tok)
    rules = _rules(tok, email=False, slack=True)
    t0 = datetime.now(UTC)
    posts: list[int] = []
    for minutes in (0, 1, 3, 6, 9, 30):
        run_once(es, cfg, rules=rules, now=t0 + timedelta(minutes=minutes))
        posts.append(len(hook.requests))
    # 3 refused at once; none while Retry-After runs; 3 refused again; 1 refused + 2 accepted; the last.
    assert posts == [3, 3, 6, 9, 10, 10]
    accepted = [str(payload) for _, _, payload in hook.requests[storm:]]
    assert _marker_counts(accepted, markers) == Counter({m: 1 for m in markers})
    entries = _outbox(es, cfg)
    assert [e["status"] for e in entries] == ["sent"] * STORIES
    assert sorted(e["attempts"] for e in entries) == [3, 3, 4]


def test_smtp_refusing_for_a_while_then_two_runs_at_once(es: Elasticsearch, settings: Settings) -> None:
    port = free_port()
    cfg = isolated(settings, smtp_port=port, smtp_timeout=5.0)
    tok = token()
    markers = _stories(es, cfg, tok)
    rules = _rules(tok, email=True, slack=False)
    t0 = datetime.now(UTC)
    for minutes in (0, 2, 5):  # connection refused: kept pending, backing off 60, 120, 240 s
        report = run_once(es, cfg, rules=rules, now=t0 + timedelta(minutes=minutes))
        assert report.delivery.retrying == STORIES and report.delivery.sent == 0
    entries = _outbox(es, cfg)
    assert {(e["status"], e["attempts"]) for e in entries} == {("pending", 3)}
    assert all("ConnectionRefusedError" in e["last_error"] for e in entries)

    sink = MailSink(port).start()
    try:
        # Recovery, with two schedulers' runs racing over the same outbox.
        when = t0 + timedelta(minutes=10)
        runs = [
            threading.Thread(target=run_once, args=(es, cfg), kwargs={"rules": rules, "now": when})
            for _ in range(2)
        ]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join(timeout=60)
        run_once(es, cfg, rules=rules, now=t0 + timedelta(hours=2))
    finally:
        sink.stop()
    texts = [m.get_body(("plain",)).get_content() for m in sink.messages]
    assert _marker_counts(texts, markers) == Counter({m: 1 for m in markers})
    assert len({m["Message-ID"] for m in sink.messages}) == len(sink.messages) == STORIES
    assert {(e["status"], e["attempts"]) for e in _outbox(es, cfg)} == {("sent", 4)}


def test_outage_longer_than_the_retry_budget_is_kept_and_retried_once(
    es: Elasticsearch, settings: Settings, hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `alerts_max_attempts` an alert is marked failed, not dropped: operators hear of it on
    their other channel, and `newsradar alerts retry` delivers it once the channel is back."""
    port = free_port()
    tok = token()
    cfg = isolated(settings, smtp_port=port, alerts_max_attempts=2, operator_slack=f"ops_{tok}")
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_OPS_{tok.upper()}", hook.url())
    markers = _stories(es, cfg, tok)
    rules = _rules(tok, email=True, slack=False)
    t0 = datetime.now(UTC)
    run_once(es, cfg, rules=rules, now=t0)
    run_once(es, cfg, rules=rules, now=t0 + timedelta(minutes=2))
    failed = [e for e in _outbox(es, cfg) if not e["operator"]]
    assert {e["status"] for e in failed} == {"failed"}
    assert all(e["operator_notified"] for e in failed)
    notices = [str(payload) for _, _, payload in hook.requests]
    assert len(notices) == len(failed) and all(any(e["doc_id"] in n for n in notices) for e in failed)

    sink = MailSink(port).start()
    try:
        run_once(es, cfg, rules=rules, now=t0 + timedelta(minutes=30))
        assert sink.messages == []  # failed stays failed until an operator says so
        for entry in failed:
            assert retry(es, cfg, entry["doc_id"], t0 + timedelta(minutes=31))
        run_once(es, cfg, rules=rules, now=t0 + timedelta(minutes=32))
        run_once(es, cfg, rules=rules, now=t0 + timedelta(hours=3))
    finally:
        sink.stop()
    texts = [m.get_body(("plain",)).get_content() for m in sink.messages]
    assert len(texts) == STORIES
    assert _marker_counts(texts, markers) == Counter({m: 1 for m in markers})
    assert {e["status"] for e in _outbox(es, cfg) if not e["operator"]} == {"sent"}
    assert len(hook.requests) == len(failed)  # one notice per failed entry, never repeated


def test_a_long_run_keeps_its_later_claims(
    es: Elasticsearch, settings: Settings, hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose sends are slow claims its later entries later: a run starting meanwhile must not
    take them for stale. Before: every claim carried the run's start time, the second run re-claimed
    the first run's fresh claims once the lease (counted from that start) had run out, and posted
    them again."""
    tok = token()
    cfg = isolated(settings, alerts_sending_lease_s=3.0, slack_max_retries=0)
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    hook.script = [(200, {}, 2.0)] * STORIES  # each post takes two seconds
    markers = _stories(es, cfg, tok)
    rules = _rules(tok, email=False, slack=True)
    start = {"rules": rules, "now": datetime.now(UTC)}
    first = threading.Thread(target=run_once, args=(es, cfg), kwargs=start)
    first.start()
    time.sleep(4.5)  # the first run is at its third entry, claimed ~4 s after it started
    run_once(es, cfg, rules=rules, now=datetime.now(UTC))
    first.join(timeout=60)
    posts = [str(payload) for _, _, payload in hook.requests]
    assert _marker_counts(posts, markers) == Counter({m: 1 for m in markers})
    assert [e["status"] for e in _outbox(es, cfg)] == ["sent"] * STORIES


def test_a_late_failure_never_resurrects_a_sent_entry(
    es: Elasticsearch, settings: Settings, hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run A's send hangs past its lease; run B takes the entry over and delivers it; then A's send
    fails. Before: A's unconditional write put the entry back to pending and a third run posted it
    again. Now A's write is conditional on its claim and is dropped."""
    tok = token()
    cfg = isolated(settings, alerts_sending_lease_s=1.0, slack_max_retries=0, slack_timeout=10.0)
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    rules = _rules(tok, email=False, slack=True)
    hook.script = [(500, {}, 3.0)]  # A's post: slow, then a server error; B's post: 200
    results: dict[str, Any] = {}
    slow = threading.Thread(
        target=lambda: results.update(a=run_once(es, cfg, rules=rules, now=datetime.now(UTC)))
    )
    slow.start()
    time.sleep(1.8)
    results["b"] = run_once(es, cfg, rules=rules, now=datetime.now(UTC))
    slow.join(timeout=60)
    assert results["b"].delivery.sent == 1
    assert results["a"].delivery.lost_claims == 1 and results["a"].delivery.retrying == 0
    [entry] = _outbox(es, cfg)
    assert entry["status"] == "sent"
    run_once(es, cfg, rules=rules, now=datetime.now(UTC) + timedelta(hours=1))
    assert len(hook.requests) == 2  # A's and B's, never a third


def test_a_slack_timeout_is_recorded_as_maybe_sent_and_never_reposted(
    es: Elasticsearch, settings: Settings, hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read timeout after the post went out may mean Slack posted it (incoming webhooks have no
    idempotency key). Before: it was retried like a refused connection, posting the alert twice."""
    tok = token()
    cfg = isolated(
        settings,
        slack_timeout=0.5,
        slack_max_retries=3,
        operator_email="ops@example.org",
        smtp_port=free_port(),
    )
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    rules = _rules(tok, email=False, slack=True)
    hook.script = [(200, {}, 2.0)]  # answers after the client gave up
    sink = MailSink(cfg.smtp_port).start()
    try:
        report = run_once(es, cfg, rules=rules, now=datetime.now(UTC))
        assert report.delivery.unconfirmed == 1 and report.delivery.retrying == 0
        for hours in (1, 2, 5):
            run_once(es, cfg, rules=rules, now=datetime.now(UTC) + timedelta(hours=hours))
    finally:
        sink.stop()
    assert len(hook.requests) == 1  # posted once, never re-posted blindly
    entry = next(e for e in _outbox(es, cfg) if not e["operator"])
    assert entry["status"] == "unconfirmed" and "may have received it" in entry["last_error"]
    assert len(sink.messages) == 1 and entry["doc_id"] in sink.messages[0].get_body(("plain",)).get_content()


def test_a_refused_recipient_is_retried_alone_and_reported(es: Elasticsearch, settings: Settings) -> None:
    """The SMTP server takes the mail for one recipient and refuses another. Before: the entry was
    marked sent and the refused recipient never heard of the alert."""
    port = free_port()
    tok = token()
    cfg = isolated(settings, smtp_port=port, alerts_max_attempts=2, operator_email="ops@example.org")
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    rule = Rule.model_validate(
        {
            "name": f"r-{tok}",
            "owner": "t",
            "query": tok,
            "channels": {"email": ["desk@example.org", "gone@example.org"]},
        }
    )
    sink = MailSink(port, refuse=("gone@example.org",)).start()
    try:
        t0 = datetime.now(UTC)
        first = run_once(es, cfg, rules=RuleSet(rules=[rule]), now=t0)
        assert first.delivery.sent == 1 and first.delivery.partial == 1
        for minutes in (5, 30, 120):
            run_once(es, cfg, rules=RuleSet(rules=[rule]), now=t0 + timedelta(minutes=minutes))
    finally:
        sink.stop()
    entries = {e["destination"]: e for e in _outbox(es, cfg) if not e["operator"]}
    assert entries["email"]["status"] == "sent"
    assert entries["email:rest"]["target"] == ["gone@example.org"]
    assert entries["email:rest"]["status"] == "failed"  # retried alone, then given up
    delivered = [to for _, tos in sink.envelopes for to in tos]
    assert delivered.count("desk@example.org") == 1  # never re-sent to whoever had it
    assert delivered.count("ops@example.org") == 1  # the operator heard of the refused recipient
