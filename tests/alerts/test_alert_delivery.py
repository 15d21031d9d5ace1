"""Delivery through real servers: an aiosmtpd SMTP server and an HTTP server standing in for Slack's
incoming webhooks (answering 200, 429 with Retry-After, 500 as scripted)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alertkit import MailSink, WebhookServer, article, free_port, index_articles, isolated, later, token
from ledger import Ledger

from alerts.channel import Delivery
from alerts.delivery import deliver
from alerts.email import EmailChannel
from alerts.rules import Rule
from alerts.runner import run_once
from alerts.state import get_doc, search_all
from alerts.store import RuleSet
from index.mapping import outbox_index
from newsradar.settings import Settings

HOSTILE = '<script>alert("x")</script> <!channel> <@U024BE7LH> & <!here> @everyone Nvidia'


@pytest.fixture
def sink() -> Iterator[MailSink]:
    server = MailSink().start()
    yield server
    server.stop()


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.stop()


def _rules(tok: str, email: bool = True, slack: bool = False) -> RuleSet:
    channels: dict[str, list[str]] = {}
    if email:
        channels["email"] = ["team@example.org", "desk@example.org"]
    if slack:
        channels["slack"] = [f"team_{tok}"]
    rule = Rule.model_validate({"name": f"r-{tok}", "owner": "t", "query": tok, "channels": channels})
    return RuleSet(rules=[rule])


def _entries(es, cfg: Settings) -> list[dict]:
    es.indices.refresh(index=outbox_index(cfg))
    return [h["_source"] for h in search_all(es, outbox_index(cfg), {"match_all": {}}, [{"doc_id": "asc"}])]


def _hostile_story(es, cfg: Settings, tok: str) -> None:
    index_articles(
        es,
        cfg,
        [
            article(
                f"{tok}-s",
                "xinhua",
                "zh",
                f"{HOSTILE} 禁令 {tok}",
                title_en=f"{HOSTILE} ban {tok}",
                country="CN",
            ),
            article(f"{tok}-s", "heise", "de", f"Verbot {tok}", title_en=f"Ban {tok}", country="DE"),
        ],
    )


def test_email_is_multipart_escaped_with_stable_message_id(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    _hostile_story(es, cfg, tok)
    run_once(es, cfg, rules=_rules(tok))
    assert len(sink.messages) == 1
    mail = sink.messages[0]
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert sink.envelopes[0][1] == ["team@example.org", "desk@example.org"]
    subject = str(mail["Subject"])
    assert subject.startswith("[ban] ") and f"ban {tok}" in subject
    entry = _entries(es, cfg)[0]
    assert mail["Message-ID"] == f"<{entry['doc_id']}@newsradar.test>"
    assert entry["doc_id"].startswith(entry["alert_id"])
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    text = mail.get_body(("plain",)).get_content()
    for expected in (
        f"禁令 {tok}",
        f"English (machine translation (libretranslate)): {HOSTILE} ban {tok}",
        "heise, xinhua",
        "de, zh",
        "First report: xinhua",
    ):
        assert expected in text
    assert "https://heise.example/" in text


def test_crash_after_send_resends_with_same_message_id(
    es, settings: Settings, sink: MailSink, ledger: Ledger
) -> None:
    """A run sent the mail, then died before writing `sent`: the next run (after the lease) sends
    again under the same Message-ID, which lets the receiving side drop the duplicate."""
    cfg = isolated(settings, smtp_port=sink.port, alerts_sending_lease_s=60.0)
    tok = token()
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    run_once(es, cfg, rules=_rules(tok), send=False)
    entry = _entries(es, cfg)[0]
    crashed_at = datetime.now(UTC) - timedelta(minutes=5)
    es.update(
        index=outbox_index(cfg),
        id=entry["doc_id"],
        doc={"status": "sending", "claimed_at": crashed_at.isoformat()},
    )
    from alerts.message import Message

    EmailChannel(cfg).send(
        Delivery(entry["doc_id"], Message.model_validate(entry["message"]), entry["target"])
    )
    report = deliver(es, cfg, datetime.now(UTC))
    ids = {m["Message-ID"] for m in sink.messages}
    ledger.fault(1)  # the run died between send and record
    ledger.alerts(1, len(ids), len(ids) - 1)  # the resend carries the same id: the receiver drops it
    assert report.sent == 1
    assert len(sink.messages) == 2
    assert sink.messages[0]["Message-ID"] == sink.messages[1]["Message-ID"]
    assert _entries(es, cfg)[0]["status"] == "sent"
    assert deliver(es, cfg, later(hours=1)).sent == 0


def test_smtp_down_then_up_delivers_once(es, settings: Settings, ledger: Ledger) -> None:
    port = free_port()
    cfg = isolated(settings, smtp_port=port)
    tok = token()
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    first = run_once(es, cfg, rules=_rules(tok))
    assert first.delivery.retrying == 1
    entry = _entries(es, cfg)[0]
    assert entry["status"] == "pending"
    assert entry["attempts"] == 1
    assert "SMTP" in entry["last_error"]
    sink = MailSink(port).start()
    try:
        run_once(es, cfg, rules=_rules(tok), now=later(minutes=2))  # after the 60 s backoff
        run_once(es, cfg, rules=_rules(tok), now=later(minutes=30))
    finally:
        sink.stop()
    ledger.fault(1)
    ledger.alerts(1, min(1, len(sink.messages)), max(0, len(sink.messages) - 1))
    assert len(sink.messages) == 1
    entry = _entries(es, cfg)[0]
    assert (entry["status"], entry["attempts"]) == ("sent", 2)


def test_slack_blocks_escape_hostile_headline(
    es, settings: Settings, hook: WebhookServer, monkeypatch, ledger: Ledger
) -> None:
    cfg = isolated(settings)
    tok = token()
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    _hostile_story(es, cfg, tok)
    report = run_once(es, cfg, rules=_rules(tok, email=False, slack=True))
    assert report.delivery.sent == 1
    assert len(hook.requests) == 1
    payload = hook.requests[0][2]
    raw = json.dumps(payload, ensure_ascii=False)
    inert = not any(f in raw for f in ("<!channel>", "<!here>", "<@U024BE7LH>", "<script>", "@everyone"))
    ledger.hostile(1, int(inert))
    for forbidden in ("<!channel>", "<!here>", "<@U024BE7LH>", "<script>", "@everyone"):
        assert forbidden not in raw
    assert "&lt;!channel&gt;" in raw and "&lt;script&gt;" in raw
    assert payload["blocks"][0]["type"] == "section"
    assert f"ban {tok}" in payload["text"]
    assert "<https://xinhua.example/" in raw  # links are real mrkdwn links


def test_slack_429_waits_for_retry_after(
    es, settings: Settings, hook: WebhookServer, monkeypatch, ledger: Ledger
) -> None:
    cfg = isolated(settings)
    tok = token()
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    hook.script = [(429, {"Retry-After": "1"})]
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    report = run_once(es, cfg, rules=_rules(tok, email=False, slack=True))
    ledger.fault(1)
    ledger.alerts(1, min(1, len(hook.requests) - 1), max(0, len(hook.requests) - 2))  # one 429 first
    assert report.delivery.sent == 1
    assert len(hook.requests) == 2
    assert hook.requests[1][0] - hook.requests[0][0] >= 0.95


def test_slack_500_retried_then_pending_then_sent(
    es, settings: Settings, hook: WebhookServer, monkeypatch, ledger: Ledger
) -> None:
    cfg = isolated(settings, slack_max_retries=2)
    tok = token()
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    hook.script = [(500, {})] * 3
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    report = run_once(es, cfg, rules=_rules(tok, email=False, slack=True))
    assert len(hook.requests) == 3  # first try + 2 retries with backoff
    assert report.delivery.retrying == 1
    entry = _entries(es, cfg)[0]
    assert entry["status"] == "pending" and "HTTP 500" in entry["last_error"]
    run_once(es, cfg, rules=_rules(tok, email=False, slack=True), now=later(minutes=5))
    ledger.fault(3)
    ledger.alerts(1, min(1, len(hook.requests) - 3), max(0, len(hook.requests) - 4))  # three 500s first
    assert len(hook.requests) == 4
    assert _entries(es, cfg)[0]["status"] == "sent"


def test_keeps_failing_notifies_operator_once(
    es, settings: Settings, sink: MailSink, hook: WebhookServer, monkeypatch
) -> None:
    cfg = isolated(
        settings,
        smtp_port=sink.port,
        slack_max_retries=0,
        alerts_max_attempts=2,
        operator_email="ops@example.org",
    )
    tok = token()
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    hook.script = [(503, {})] * 10
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    rules = _rules(tok, email=False, slack=True)
    run_once(es, cfg, rules=rules)
    assert sink.messages == []
    run_once(es, cfg, rules=rules, now=later(minutes=5))
    slack_entry = next(e for e in _entries(es, cfg) if e["channel"] == "slack")
    assert slack_entry["status"] == "failed" and slack_entry["operator_notified"] is True
    assert len(sink.messages) == 1
    notice = sink.messages[0]
    assert notice["To"] == "ops@example.org" and str(notice["Subject"]).startswith("[newsradar operator]")
    assert slack_entry["doc_id"] in notice.get_body(("plain",)).get_content()
    run_once(es, cfg, rules=rules, now=later(minutes=30))
    assert len(sink.messages) == 1
    assert len(hook.requests) == 2


def test_slack_4xx_fails_without_retry_and_unknown_connection_is_named(
    es, settings: Settings, hook, monkeypatch
):
    cfg = isolated(settings)
    tok = token()
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    rules = _rules(tok, email=False, slack=True)
    run_once(es, cfg, rules=rules)  # no webhook configured for the connection
    entry = _entries(es, cfg)[0]
    assert entry["status"] == "pending"
    assert f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}" in entry["last_error"]
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", hook.url())
    hook.script = [(404, {})]
    run_once(es, cfg, rules=rules, now=later(minutes=5))
    entry = _entries(es, cfg)[0]
    assert entry["status"] == "failed" and "HTTP 404" in entry["last_error"]
    assert len(hook.requests) == 1
    assert get_doc(es, outbox_index(cfg), entry["doc_id"]) is not None
