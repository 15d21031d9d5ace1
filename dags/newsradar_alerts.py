"""newsradar_alerts: evaluate alert rules after every indexed batch (and on a clock for digests), then
deliver the outbox."""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from dagkit import INDEXED_ARTICLES, dag_args
from newsradar.settings import get_settings

SETTINGS = get_settings()

DOC = f"""
### newsradar_alerts

Runs when `newsradar_process` has indexed a batch (asset `newsradar_indexed_articles`) — immediate
rules — and on `{SETTINGS.digest_schedule}` (`NEWSRADAR_DIGEST_SCHEDULE`) so digests and alerts held
by quiet hours go out on time.

- `evaluate`: every enabled rule (YAML files in `rules/` plus rules saved from the web UI) over the
  articles first seen since the rule's watermark, minus an overlap window for late-indexed
  articles; matches are grouped by story and at most one alert per (rule, story) is created in the
  outbox (`<prefix>-alerts`), plus one update when a story reaches a new language or
  country or its corroboration threshold.
- `deliver`: sends every due outbox entry by email or Slack; failures stay pending and are retried
  with backoff on later runs; after repeated failures operators get one notice.

**When it fails**
- An invalid rule does not fail the run: it is listed in the `evaluate` log with file, field and
  reason (`newsradar alerts validate`).
- `deliver` never loses an alert: a channel that is down leaves the entry pending. See
  `newsradar alerts outbox --status failed` and `newsradar alerts retry ENTRY` once fixed.
- Elasticsearch unreachable: both tasks fail and retry; nothing is sent twice on re-run.
"""


@dag(
    dag_id="newsradar_alerts",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SETTINGS.digest_schedule, timezone="UTC"), assets=[INDEXED_ARTICLES]
    ),
    **dag_args(DOC, queue="enrich"),
)
def newsradar_alerts() -> None:
    @task
    def evaluate() -> dict[str, Any]:
        from alerts.runner import run_once
        from index.client import get_client

        settings = get_settings()
        report = run_once(get_client(settings), settings, send=False).as_json()
        for problem in report["rule_problems"]:
            print(f"INVALID RULE {problem['source']}: {problem['field']}: {problem['reason']}")
        print(report)
        return {"enqueued": report["enqueued"], "digests": report["digests"]}

    @task
    def deliver(evaluated: dict[str, Any]) -> dict[str, Any]:
        from alerts.delivery import deliver as deliver_outbox
        from index.client import get_client
        from newsradar.dates import utcnow

        settings = get_settings()
        report = deliver_outbox(get_client(settings), settings, utcnow()).as_json()
        print({**evaluated, **report})
        return {key: report[key] for key in ("sent", "retrying", "failed")}

    deliver(evaluate())  # type: ignore[arg-type]


newsradar_alerts()
