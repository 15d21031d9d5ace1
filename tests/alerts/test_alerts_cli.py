"""`newsradar alerts ...` end to end on the real node and a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alertkit import MailSink, article, index_articles, isolated, token
from typer.testing import CliRunner

from commands.main import app
from index.mapping import alert_state_index, outbox_index
from newsradar.settings import Settings, get_settings


@pytest.fixture
def env(es, settings: Settings, tmp_path: Path, monkeypatch) -> Iterator[tuple[Settings, MailSink, str]]:
    sink = MailSink().start()
    tok = token()
    cfg = isolated(settings, smtp_port=sink.port, rules_dir=tmp_path)
    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", cfg.index_prefix)
    monkeypatch.setenv("NEWSRADAR_RULES_DIR", str(tmp_path))
    monkeypatch.setenv("NEWSRADAR_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("NEWSRADAR_SMTP_FROM", "alerts@newsradar.test")
    (tmp_path / "watch.yaml").write_text(
        f"name: watch-{tok}\nowner: t\nquery: {tok}\nchannels: {{email: [team@example.org]}}\n", "utf-8"
    )
    get_settings.cache_clear()
    yield cfg, sink, tok
    get_settings.cache_clear()
    sink.stop()


def test_validate_reports_file_field_reason(env, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nowner: t\nquery: x\nlanguages: [fr]\n", "utf-8")
    result = CliRunner().invoke(app, ["alerts", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert f"ok watch-{env[2]}" in result.output
    assert "bad.yaml: languages.0:" in result.output and "'de', 'en' or 'zh'" in result.output
    (tmp_path / "bad.yaml").unlink()
    assert CliRunner().invoke(app, ["alerts", "validate"]).exit_code == 0


def test_list_test_run_outbox(env, es) -> None:
    cfg, sink, tok = env
    index_articles(
        es,
        cfg,
        [
            article(f"{tok}-a", "heise", "de", f"Verbot {tok} A", title_en=f"Ban {tok} A"),
            article(f"{tok}-b", "reuters", "en", f"Ban {tok} B"),
        ],
    )
    runner = CliRunner()
    listed = runner.invoke(app, ["alerts", "list", "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.stdout.splitlines()[0])["name"] == f"watch-{tok}"

    dry = runner.invoke(app, ["alerts", "test", f"watch-{tok}", "--since", "7d"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("would-create") == 2
    assert f"Subject: [ban] Ban {tok} A" in dry.output
    assert sink.messages == []
    assert not es.indices.exists(index=alert_state_index(cfg))  # a dry run writes nothing
    assert not es.indices.exists(index=outbox_index(cfg))

    run = runner.invoke(app, ["alerts", "run"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert report["delivery"]["sent"] == 2 and report["rules"][0]["alerts_created"] == 2
    assert len(sink.messages) == 2

    again = runner.invoke(app, ["alerts", "test", f"watch-{tok}", "--json"])
    assert [json.loads(line)["status"] for line in again.stdout.splitlines()] == ["exists", "exists"]

    sent = runner.invoke(app, ["alerts", "outbox", "--status", "sent", "--json"])
    rows = [json.loads(line) for line in sent.stdout.splitlines()]
    assert len(rows) == 2 and {r["status"] for r in rows} == {"sent"}
    assert runner.invoke(app, ["alerts", "retry", rows[0]["doc_id"]]).exit_code == 1  # sent: nothing to retry


def test_unknown_rule_and_bad_since(env) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["alerts", "test", "nope"])
    assert missing.exit_code == 1 and "no valid rule named 'nope'" in missing.output
    bad = runner.invoke(app, ["alerts", "test", f"watch-{env[2]}", "--since", "lately"])
    assert bad.exit_code == 1 and "not a duration" in bad.output
