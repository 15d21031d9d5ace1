"""One alerting run: load rules, evaluate, turn alerts into outbox entries, deliver. Safe to run
from cron, an Airflow task or two places at once: every step is idempotent over the state in
Elasticsearch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from alerts.channel import Channel
from alerts.delivery import DeliveryReport, deliver
from alerts.digest import enqueue_digests
from alerts.enqueue import PrepareReport, enqueue_immediate
from alerts.evaluate import RuleResult, evaluate
from alerts.rules import RuleProblem
from alerts.store import RuleSet, load_rules
from newsradar.dates import iso, utcnow
from newsradar.settings import Settings


@dataclass
class RunReport:
    at: str
    problems: list[RuleProblem] = field(default_factory=list)
    rules: list[RuleResult] = field(default_factory=list)
    prepared: PrepareReport = field(default_factory=PrepareReport)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "rule_problems": [
                {"source": p.source, "field": p.field, "reason": p.reason} for p in self.problems
            ],
            "rules": [r.as_json() for r in self.rules],
            "enqueued": self.prepared.enqueued,
            "held_quiet_hours": self.prepared.held_quiet,
            "digests": self.prepared.digests,
            "delivery": self.delivery.as_json(),
        }


def run_once(
    client: Elasticsearch,
    settings: Settings,
    *,
    now: datetime | None = None,
    rules: RuleSet | None = None,
    channels: dict[str, Channel] | None = None,
    send: bool = True,
) -> RunReport:
    now = now or utcnow()
    ruleset = rules if rules is not None else load_rules(client, settings)
    report = RunReport(at=iso(now), problems=list(ruleset.problems))
    report.rules = evaluate(client, settings, ruleset.rules, now)
    enabled = {rule.name: rule for rule in ruleset.rules if rule.enabled}
    enqueue_immediate(client, settings, enabled, now, report.prepared)
    enqueue_digests(client, settings, enabled, now, report.prepared)
    if send:
        report.delivery = deliver(client, settings, now, channels)
    return report
