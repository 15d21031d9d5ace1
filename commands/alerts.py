"""`newsradar alerts ...`: list, validate and dry-run rules; run once; inspect and retry the outbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from elasticsearch import Elasticsearch
from elasticsearch import TransportError as ESTransportError

from commands.common import echo_err, fail
from newsradar.settings import Settings, get_settings, redact_url

alerts_app = typer.Typer(
    help="Alert rules, their evaluation and delivery (email, Slack).", no_args_is_help=True
)


def _client(settings: Settings) -> Elasticsearch:
    from index.client import get_client

    return get_client(settings, timeout=10.0)


def _ruleset(settings: Settings, path: Path | None = None, stored: bool = True) -> Any:
    """Rules from files (+ saved rules when Elasticsearch answers; a warning when it does not)."""
    from alerts.store import load_rules

    client: Elasticsearch | None = _client(settings) if stored else None
    try:
        return load_rules(client, settings, path)
    except (ESTransportError, ConnectionError) as error:
        where = redact_url(settings.es_url)
        echo_err(f"warning: saved rules not loaded, Elasticsearch at {where} unreachable ({error})")
        return load_rules(None, settings, path)


def _print_problems(problems: list[Any]) -> None:
    for problem in problems:
        echo_err(f"invalid rule: {problem}")


@alerts_app.command("list")
def list_rules(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per rule")] = False,
) -> None:
    """Every rule (files in the rules folder and rules saved from the web UI), invalid ones on stderr."""
    settings = get_settings()
    ruleset = _ruleset(settings)
    for rule in ruleset.rules:
        origin = ruleset.origins.get(rule.name, "")
        if as_json:
            typer.echo(json.dumps({**rule.model_dump(mode="json"), "origin": origin}, ensure_ascii=False))
        else:
            channels = rule.channels.email + [f"slack:{n}" for n in rule.channels.slack]
            state = "enabled" if rule.enabled else "disabled"
            typer.echo(
                f"{rule.name:28} {state:8} {rule.mode:9} {', '.join(channels) or '(no channels)'}  [{origin}]"
            )
    _print_problems(ruleset.problems)


@alerts_app.command("validate")
def validate(
    path: Annotated[
        Path | None, typer.Argument(help="Rule file or folder (default: the rules folder + saved rules)")
    ] = None,
) -> None:
    """Check rules against the schema; every problem names file, field and reason. Exit 1 on any."""
    settings = get_settings()
    if path is not None and not path.exists():
        raise fail(f"{path} does not exist")
    ruleset = _ruleset(settings, path, stored=path is None)
    for rule in ruleset.rules:
        typer.echo(f"ok {rule.name} ({ruleset.origins.get(rule.name, '')})")
    for problem in ruleset.problems:
        typer.echo(f"invalid {problem}")
    if ruleset.problems:
        raise typer.Exit(1)


@alerts_app.command("test")
def test_rule(
    rule_name: Annotated[str, typer.Argument(metavar="RULE", help="Rule name (or a rule file)")],
    since: Annotated[str, typer.Option(help="Look back this far: 90m, 36h, 7d, 2w")] = "7d",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per story")] = False,
    show: Annotated[str, typer.Option(help="Render as: email, slack, summary")] = "email",
) -> None:
    """Show what RULE would have sent over the last --since, WITHOUT sending or changing any state."""
    from alerts.channels import default_channels
    from alerts.evaluate import evaluate_rule
    from alerts.message import Message
    from alerts.rules import load_rule_file
    from newsradar.dates import parse_duration, utcnow

    settings = get_settings()
    if show not in ("email", "slack", "summary"):
        raise fail("--show must be email, slack or summary")
    try:
        window = parse_duration(since)
    except ValueError as error:
        raise fail(str(error)) from error
    candidate = Path(rule_name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        rules, problems = load_rule_file(candidate)
        _print_problems(problems)
        rule = rules[0] if rules else None
    else:
        ruleset = _ruleset(settings)
        rule = ruleset.get(rule_name)
        if rule is None:
            _print_problems(ruleset.problems)
            known = ", ".join(r.name for r in ruleset.rules) or "none"
            raise fail(f"no valid rule named {rule_name!r} (valid rules: {known})")
    if rule is None:
        raise fail(f"{rule_name} holds no valid rule")
    now = utcnow()
    try:
        result = evaluate_rule(_client(settings), settings, rule, now, since=now - window, dry_run=True)
    except (ESTransportError, ConnectionError) as error:
        raise fail(f"Elasticsearch at {redact_url(settings.es_url)} unreachable: {error}") from error
    channels = default_channels(settings)
    sendable = [p for p in result.planned if p.status == "would-create"]
    for planned in result.planned:
        story = planned.story
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "alert_id": planned.alert_id,
                        "kind": planned.kind,
                        "status": planned.status,
                        "story": story.model_dump(mode="json"),
                    },
                    ensure_ascii=False,
                )
            )
            continue
        typer.echo(
            f"{planned.status:20} [{story.event_label}] {story.english_title}  "
            f"({len(story.outlets)} outlets, {len(story.languages)} languages, story {story.story_id})"
        )
    if not as_json and show != "summary" and sendable:
        messages: list[Message]
        if rule.mode == "digest":
            messages = [
                Message(
                    alert_id="preview",
                    rule=rule.name,
                    rule_description=rule.description,
                    kind="digest",
                    stories=[p.story for p in sendable],
                    period=now.isoformat(),
                )
            ]
        else:
            messages = [
                Message(
                    alert_id=p.alert_id,
                    rule=rule.name,
                    rule_description=rule.description,
                    kind="update" if p.kind == "update" else "new",
                    stories=[p.story],
                )
                for p in sendable
            ]
        for message in messages:
            typer.echo("-" * 78)
            typer.echo(channels[show].preview(message))
    echo_err(
        f"{rule.name}: {result.matched} matching stories since {result.since}; would send "
        f"{len(sendable)} ({result.known} already alerted, {result.uncorroborated} below corroboration);"
        " nothing sent"
    )


@alerts_app.command("run")
def run(
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Evaluate and queue, but do not deliver")
    ] = False,
) -> None:
    """Evaluate every enabled rule once and deliver what is due; prints a JSON report."""
    from alerts.runner import run_once

    settings = get_settings()
    try:
        report = run_once(_client(settings), settings, send=not no_send)
    except (ESTransportError, ConnectionError) as error:
        raise fail(f"Elasticsearch at {redact_url(settings.es_url)} unreachable: {error}") from error
    _print_problems(report.problems)
    typer.echo(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    if any(r.error for r in report.rules):
        raise typer.Exit(2)


@alerts_app.command("outbox")
def outbox(
    status: Annotated[
        str | None, typer.Option(help="Only this status: pending, sending, sent, failed")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most recent N entries")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per entry")] = False,
) -> None:
    """Outbox entries (one per alert and destination), newest first; default: everything not yet sent."""
    from index.mapping import outbox_index

    settings = get_settings()
    client = _client(settings)
    index = outbox_index(settings)
    if not client.indices.exists(index=index):
        echo_err("outbox is empty (no alert was ever queued)")
        return
    query: dict[str, Any] = (
        {"term": {"status": status}} if status else {"bool": {"must_not": [{"term": {"status": "sent"}}]}}
    )
    hits = client.search(index=index, query=query, size=limit, sort=[{"created_at": "desc"}])["hits"]["hits"]
    fields = (
        "doc_id",
        "rule",
        "kind",
        "destination",
        "status",
        "attempts",
        "not_before",
        "sent_at",
        "last_error",
    )
    for hit in hits:
        source = hit["_source"]
        row = {name: source.get(name) for name in fields}
        row["title"] = next(
            (s.get("headline_en") or s.get("headline") for s in source["message"].get("stories", [])), None
        )
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            error = f"  error: {row['last_error']}" if row["last_error"] else ""
            typer.echo(
                f"{row['status']:8} {row['attempts']!s:>2} {row['destination']:18} {row['rule']:24} "
                f"{row['doc_id']}  {row['title'] or ''}{error}"
            )
    if not hits and not as_json:
        echo_err("no entries")


@alerts_app.command("retry")
def retry(entry: Annotated[str, typer.Argument(help="Outbox entry id (see `alerts outbox`)")]) -> None:
    """Put a failed entry back to pending with a fresh attempt budget; the next run sends it."""
    from alerts.delivery import retry as do_retry
    from newsradar.dates import utcnow

    settings = get_settings()
    if not do_retry(_client(settings), settings, entry, utcnow()):
        raise fail(f"no unsent outbox entry {entry!r}")
    typer.echo(f"{entry}: pending")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
