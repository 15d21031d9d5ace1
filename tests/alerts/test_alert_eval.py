"""Evaluation against the real Elasticsearch node, delivering to a real SMTP server: one alert per
story (not per article), nothing twice, late-indexed articles found, updates only on thresholds,
parallel runs, digests and quiet hours."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alertkit import MailSink, article, index_articles, isolated, later, token

from alerts.rules import Rule
from alerts.runner import run_once
from alerts.store import RuleSet
from index.mapping import outbox_index
from newsradar.settings import Settings


@pytest.fixture
def sink() -> Iterator[MailSink]:
    server = MailSink().start()
    yield server
    server.stop()


def _rule(name: str, query: str, **extra: object) -> Rule:
    data = {"name": name, "owner": "tests", "query": query, "channels": {"email": ["team@example.org"]}}
    data.update(extra)
    return Rule.model_validate(data)


def _three_stories(tok: str) -> list[dict[str, object]]:
    docs = []
    for n in range(3):
        story = f"{tok}-story-{n}"
        docs.append(
            article(story, "heise", "de", f"Verbot {tok} Nummer {n}", title_en=f"Ban {tok} number {n}")
        )
        docs.append(article(story, "reuters", "en", f"Ban {tok} number {n} confirmed", country="US"))
    return docs


def test_first_run_one_alert_per_story_second_run_nothing(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    index_articles(es, cfg, _three_stories(tok))
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok)])

    first = run_once(es, cfg, rules=rules)
    assert first.rules[0].matched == 3
    assert first.delivery.sent == 3
    assert len(sink.messages) == 3  # three stories, six articles
    subjects = sorted(str(m["Subject"]) for m in sink.messages)
    assert all(tok in s for s in subjects)

    second = run_once(es, cfg, rules=rules)
    assert second.rules[0].created == 0
    assert second.delivery.sent == 0
    assert len(sink.messages) == 3


def test_a_rule_on_a_family_fires_for_its_versions(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    versioned = article(f"{tok}-a", "wire", "en", f"Kling 3.0 out {tok}", entities=("Kling 3.0", "Kuaishou"))
    other = article(f"{tok}-b", "wire", "en", f"Sora update {tok}", entities=("Sora", "OpenAI"))
    index_articles(es, cfg, [versioned, other])
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok, entities=["Kling"])])
    result = run_once(es, cfg, rules=rules)
    assert result.rules[0].matched == 1
    assert len(sink.messages) == 1 and "Kling 3.0" in str(sink.messages[0]["Subject"])


def test_a_rule_on_the_eu_fires_for_a_member_states_authority(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    italy = article(f"{tok}-a", "wire", "en", f"Garante blocks DeepSeek {tok}", entities=("Garante",))
    usa = article(f"{tok}-b", "wire", "en", f"BIS adds labs {tok}", entities=("US Commerce Department",))
    swiss = article(f"{tok}-c", "wire", "en", f"Swiss ban {tok}", entities=("Switzerland", "DeepSeek"))
    index_articles(es, cfg, [italy, usa, swiss])
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok, entities=["EU"])])
    result = run_once(es, cfg, rules=rules)
    assert result.rules[0].matched == 1
    assert len(sink.messages) == 1 and "Garante" in str(sink.messages[0]["Subject"])


def test_new_article_in_old_story_sends_nothing_unless_threshold(
    es, settings: Settings, sink: MailSink
) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    story = f"{tok}-s"
    index_articles(
        es, cfg, [article(story, "heise", "de", f"Verbot {tok}", title_en=f"Ban {tok}", country="DE")]
    )
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok)])
    run_once(es, cfg, rules=rules)
    assert len(sink.messages) == 1

    # same language, same country: no message
    index_articles(es, cfg, [article(story, "spiegel", "de", f"Auch hier: Verbot {tok}", country="DE")])
    run_once(es, cfg, rules=rules)
    assert len(sink.messages) == 1

    # a new language (and country) crosses a threshold: exactly one update, marked as such
    index_articles(
        es, cfg, [article(story, "xinhua", "zh", f"禁令 {tok}", title_en=f"Ban {tok}", country="CN")]
    )
    report = run_once(es, cfg, rules=rules)
    assert report.rules[0].updates == 1
    assert len(sink.messages) == 2
    update = sink.messages[1]
    assert str(update["Subject"]).startswith("[ban] Update:")
    assert "new language: zh" in update.get_body(("plain",)).get_content()
    assert update["In-Reply-To"] == sink.messages[0]["Message-ID"]

    # another language later: the one update was used, nothing more
    index_articles(es, cfg, [article(story, "bbc", "en", f"Ban {tok} spreads", country="GB")])
    run_once(es, cfg, rules=rules)
    assert len(sink.messages) == 2


def test_corroboration_counts_the_whole_story(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    story = f"{tok}-s"
    index_articles(es, cfg, [article(story, "heise", "de", f"Verbot {tok}")])
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok, min_outlets=2)])
    report = run_once(es, cfg, rules=rules)
    assert report.rules[0].uncorroborated == 1
    assert sink.messages == []
    # the second outlet's article does not contain the query word: the story still matches
    index_articles(es, cfg, [article(story, "reuters", "en", "A second outlet reports the ban")])
    report = run_once(es, cfg, rules=rules)
    assert report.rules[0].created == 1
    assert len(sink.messages) == 1
    assert "heise, reuters" in sink.messages[0].get_body(("plain",)).get_content()


def test_late_indexed_articles_are_not_missed(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port, alerts_overlap_s=600.0)
    tok = token()
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok)])
    run_once(es, cfg, rules=rules)  # sets the watermark
    now = datetime.now(UTC)
    index_articles(
        es,
        cfg,
        [
            # fetched three hours ago, indexed only now (slow enrichment): published/first-seen are old
            article(f"{tok}-a", "heise", "de", f"Verbot {tok} A", seen=now - timedelta(hours=3)),
            # stamped a minute before the watermark but searchable only after that run (refresh lag)
            article(f"{tok}-b", "heise", "de", f"Verbot {tok} B", indexed=now - timedelta(seconds=60)),
        ],
    )
    report = run_once(es, cfg, rules=rules)
    assert report.rules[0].created == 2
    assert len(sink.messages) == 2


def test_parallel_runs_send_each_alert_once(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    docs = [article(f"{tok}-{n}", f"outlet{m}", "en", f"Ban {tok} {n}") for n in range(6) for m in range(2)]
    index_articles(es, cfg, docs)
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok)])
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            run_once(es, cfg, rules=rules)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    run_once(es, cfg, rules=rules)  # anything a racing run left pending goes out now
    ids = [str(m["Message-ID"]) for m in sink.messages]
    assert len(ids) == 6
    assert len(set(ids)) == 6


def test_invalid_rule_reported_while_others_run(es, settings: Settings, sink: MailSink, tmp_path) -> None:
    from alerts.store import load_rules

    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    (tmp_path / "good.yaml").write_text(
        f"name: good-{tok}\nowner: t\nquery: {tok}\nchannels: {{email: [a@example.org]}}\n", "utf-8"
    )
    (tmp_path / "bad.yaml").write_text(
        f"name: bad-{tok}\nowner: t\nquery: {tok}\nmode: sometimes\nchannels: {{email: [a@example.org]}}\n",
        "utf-8",
    )
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    report = run_once(es, cfg, rules=load_rules(es, cfg, tmp_path))
    assert [(p.source.endswith("bad.yaml"), p.field) for p in report.problems] == [(True, "mode")]
    assert [r.rule for r in report.rules] == [f"good-{tok}"]
    assert len(sink.messages) == 1


def test_digest_sends_one_message_per_period(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    index_articles(es, cfg, _three_stories(tok))
    schedule = {"every": "day", "at": "08:00", "timezone": "UTC"}
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok, mode="digest", schedule=schedule)])
    first = run_once(es, cfg, rules=rules)
    assert first.rules[0].created == 3
    assert sink.messages == []  # waiting for the next 08:00
    tomorrow = later(hours=24)
    run_once(es, cfg, rules=rules, now=tomorrow)
    assert len(sink.messages) == 1
    body = sink.messages[0].get_body(("plain",)).get_content()
    assert all(f"Ban {tok} number {n}" in body for n in range(3))
    assert "3 new stories" in str(sink.messages[0]["Subject"])
    run_once(es, cfg, rules=rules, now=tomorrow + timedelta(minutes=5))
    assert len(sink.messages) == 1


def test_quiet_hours_hold_alerts_until_they_end(es, settings: Settings, sink: MailSink) -> None:
    cfg = isolated(settings, smtp_port=sink.port)
    tok = token()
    now = datetime.now(UTC)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    index_articles(es, cfg, [article(f"{tok}-s", "heise", "de", f"Verbot {tok}")])
    rules = RuleSet(rules=[_rule(f"r-{tok}", tok, quiet_hours=quiet)])
    report = run_once(es, cfg, rules=rules, now=now)
    assert report.prepared.held_quiet == 1
    assert sink.messages == []
    es.indices.refresh(index=outbox_index(cfg))
    held = es.search(index=outbox_index(cfg), query={"match_all": {}})["hits"]["hits"]
    assert [h["_source"]["status"] for h in held] == ["pending"]
    run_once(es, cfg, rules=rules, now=now + timedelta(hours=1, minutes=5))
    assert len(sink.messages) == 1
