"""Rule schema, rule files and saved rules: bad rules are reported with file, field and reason
and never hide the good ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alertkit import isolated, token

from alerts.rules import QuietHours, Rule, Schedule, load_rule_dir, load_rule_file
from alerts.store import RuleConflict, load_rules, save_rule
from alerts.timing import last_due, quiet_until
from index.mapping import rules_index
from newsradar.dates import parse_duration
from newsradar.settings import PROJECT_ROOT, Settings

GOOD = "name: good\nowner: t\nquery: nvidia\nchannels: {email: [a@example.org]}\n"


def test_shipped_example_rules_are_valid() -> None:
    rules, problems = load_rule_dir(PROJECT_ROOT / "rules")
    assert problems == []
    names = {rule.name for rule, _ in rules}
    assert names == {"nvidia-ai-chips", "chinese-lab-releases", "bans-germany-eu"}
    digest = next(rule for rule, _ in rules if rule.mode == "digest")
    assert digest.schedule is not None and digest.schedule.at == "08:00"


def test_rule_entities_become_canonical_names_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    base = {"name": "e", "owner": "t", "channels": {"email": ["a@example.org"]}}
    rule = Rule.model_validate({**base, "entities": ["US", "通义千问", "Kling3.0", "Qwen", "CAC"]})
    assert rule.entities == ["United States", "Qwen", "Kling 3.0", "Cyberspace Administration of China"]
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nowner: t\nentities: [Nvidia, Acme Robotics]\nchannels: {email: [a@x.org]}\n")
    rules, problems = load_rule_file(path)
    assert rules == [] and len(problems) == 1
    assert problems[0].field == "entities" and "'Acme Robotics'" in problems[0].reason


def test_invalid_rules_name_file_field_and_reason(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD, "utf-8")
    (tmp_path / "bad.yaml").write_text(
        "name: Bad Name\nowner: t\nquery: x\nmin_outlets: 0\n"
        "channels: {email: [not-an-address], slack: ['https://hooks.example/T0/B0/secret']}\n"
        "quiet_hours: {start: '25:00', end: '07:00', timezone: Mars/Olympus}\n",
        "utf-8",
    )
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n", "utf-8")
    rules, problems = load_rule_dir(tmp_path)
    assert [rule.name for rule, _ in rules] == ["good"]
    fields = {(Path(p.source).name, p.field) for p in problems}
    assert fields == {
        ("bad.yaml", "name"),
        ("bad.yaml", "min_outlets"),
        ("bad.yaml", "channels.email"),
        ("bad.yaml", "channels.slack"),
        ("bad.yaml", "quiet_hours.start"),
        ("bad.yaml", "quiet_hours.timezone"),
        ("broken.yaml", "(file)"),
    }
    reasons = " ".join(p.reason for p in problems)
    assert "never the webhook URL" in reasons and "not-an-address" in reasons and "Mars/Olympus" in reasons


def test_rule_without_any_filter_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text("name: everything\nowner: t\n", "utf-8")
    rules, problems = load_rule_file(path)
    assert rules == [] and "matches all" in problems[0].reason


def test_list_file_reports_position(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "rules:\n  - {name: a, owner: t, query: x, channels: {slack: [desk]}}\n"
        "  - {name: b, owner: t, query: x, mode: x, channels: {slack: [desk]}}\n",
        "utf-8",
    )
    rules, problems = load_rule_file(path)
    assert [r.name for r in rules] == ["a"]
    assert problems[0].source.endswith("many.yaml[1]") and problems[0].field == "mode"


def test_saved_rules_merge_with_files_and_are_revalidated(es, settings: Settings, tmp_path: Path) -> None:
    cfg = isolated(settings)
    (tmp_path / "good.yaml").write_text(GOOD, "utf-8")
    tok = token()
    saved = Rule(name=f"saved-{tok}", owner="analyst", query="Qwen release", channels={"slack": ["china"]})
    save_rule(es, cfg, saved)
    # saved while no rule file used the name; the file came later: the file wins, the clash is reported
    save_rule(es, cfg, Rule(name="good", owner="analyst", query="dup", channels={"slack": ["x"]}))
    # a saved rule that no longer fits the schema (written by an older version)
    es.index(
        index=rules_index(cfg),
        id="old",
        document={"name": "old", "rule": {"name": "old", "owner": "x", "query": "x", "mode": "hourly"}},
        refresh="wait_for",
    )
    ruleset = load_rules(es, cfg, tmp_path)
    assert sorted(r.name for r in ruleset.rules) == ["good", f"saved-{tok}"]
    assert ruleset.get("good") is not None and ruleset.get("good").query == "nvidia"  # type: ignore[union-attr]
    assert ruleset.get(f"saved-{tok}") == saved
    problems = {(p.source, p.field) for p in ruleset.problems}
    assert (f"{rules_index(cfg)}/old", "mode") in problems
    assert (rules_index(cfg), "name") in problems


def test_a_rule_that_would_alert_nobody_is_invalid(tmp_path: Path) -> None:
    """Before: a rule without channels validated, matched stories and outboxed nothing, silently."""
    path = tmp_path / "silent.yaml"
    path.write_text("name: silent\nowner: t\nquery: qwen\n", "utf-8")
    rules, problems = load_rule_file(path)
    assert rules == [] and "alert nobody" in problems[0].reason
    path.write_text("name: silent\nowner: t\nquery: qwen\nenabled: false\n", "utf-8")
    assert [r.name for r in load_rule_file(path)[0]] == ["silent"]  # a disabled draft may wait for one


def test_a_saved_rule_may_not_take_a_file_rules_name(es, settings: Settings, tmp_path: Path) -> None:
    """Before: the UI accepted it, and the file rule of that name won forever: the saved rule never ran."""
    (tmp_path / "good.yaml").write_text(GOOD, "utf-8")
    cfg = isolated(settings, rules_dir=tmp_path)
    with pytest.raises(RuleConflict, match=r"good.yaml"):
        save_rule(es, cfg, Rule(name="good", owner="analyst", query="dup", channels={"slack": ["x"]}))
    assert load_rules(es, cfg).get("good").query == "nvidia"  # type: ignore[union-attr]


def test_digest_periods_and_quiet_hours() -> None:
    now = datetime(2025, 3, 10, 6, 30, tzinfo=UTC)  # 07:30 in Berlin
    assert last_due(Schedule(), now) == datetime(2025, 3, 9, 7, 0, tzinfo=UTC)
    assert last_due(Schedule(every="week", weekday="fri"), now) == datetime(2025, 3, 7, 7, 0, tzinfo=UTC)
    assert last_due(Schedule(every="hour", at="00:15", timezone="UTC"), now) == datetime(
        2025, 3, 10, 6, 15, tzinfo=UTC
    )
    summer = datetime(2025, 7, 1, 6, 30, tzinfo=UTC)  # 08:30 in Berlin (CEST)
    assert last_due(Schedule(), summer) == datetime(2025, 7, 1, 6, 0, tzinfo=UTC)
    night = QuietHours(start="22:00", end="07:00")
    assert quiet_until(night, now) is None
    assert quiet_until(night, datetime(2025, 3, 10, 21, 30, tzinfo=UTC)) == datetime(
        2025, 3, 11, 6, 0, tzinfo=UTC
    )
    assert quiet_until(night, datetime(2025, 3, 10, 2, 0, tzinfo=UTC)) == datetime(
        2025, 3, 10, 6, 0, tzinfo=UTC
    )
    assert parse_duration("7d").days == 7 and parse_duration("90m").seconds == 5400
