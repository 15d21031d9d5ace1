"""newsradar_maintenance: daily health, template and retention housekeeping."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from dagkit import dag_args
from newsradar.settings import get_settings

SETTINGS = get_settings()

DOC = f"""
### newsradar_maintenance

Daily at `{SETTINGS.maintenance_schedule}` (`NEWSRADAR_MAINTENANCE_SCHEDULE`):

- `index_health`: cluster health, the articles alias, its index, document count and size, pending
  failed documents. Fails (and notifies operators) when the cluster is red.
- `template_check`: re-installs the articles index template if it is missing or older than the code's
  mapping version and reports whether the live index needs `newsradar index migrate` (or the
  `newsradar_backfill` DAG with `mode=migrate`).
- `staging_cleanup`: deletes run batches older than `NEWSRADAR_STAGING_RETENTION_DAYS`
  ({SETTINGS.staging_retention_days}) days.
- `seen_compaction`: forgets seen URLs older than `NEWSRADAR_SEEN_RETENTION_DAYS`
  ({SETTINGS.seen_retention_days}) days and compacts the crawl state file.
- `failures_compaction`: folds the index failure journal (one file per indexing run that had
  failures) into one file; entries stay until indexed (`newsradar index failures` lists them).

**When it fails**: `index_health` red → look at `newsradar es status` and the node log (disk full,
node down). The other tasks only touch their own files and are safe to clear and re-run.
"""


@dag(
    dag_id="newsradar_maintenance",
    schedule=SETTINGS.maintenance_schedule,
    **dag_args(DOC),
)
def newsradar_maintenance() -> None:
    @task
    def index_health() -> dict[str, Any]:
        from index.client import get_client
        from index.migrate import status

        settings = get_settings()
        client = get_client(settings)
        health = client.cluster.health()
        report: dict[str, Any] = {"cluster": health["status"], **status(client, settings)}
        if report["index"]:
            stats = client.indices.stats(index=report["index"], metric="store")
            report["size_bytes"] = stats["_all"]["primaries"]["store"]["size_in_bytes"]
        print(report)
        if health["status"] == "red":
            raise RuntimeError(f"Elasticsearch cluster is red: {report}")
        return {k: report[k] for k in ("cluster", "documents", "pending_failures")}

    @task
    def template_check() -> dict[str, Any]:
        from index.client import get_client
        from index.mapping import put_template
        from index.migrate import status

        settings = get_settings()
        client = get_client(settings)
        before = status(client, settings)
        if before["template_mapping_version"] != before["code_mapping_version"]:
            put_template(client, settings)
            print(f"index template re-installed (was {before['template_mapping_version']!r})")
        if before["needs_migration"]:
            print("the live index is on an older mapping: run `newsradar index migrate`")
        return {"needs_migration": before["needs_migration"]}

    @task
    def staging_cleanup() -> int:
        from datetime import UTC, datetime, timedelta

        from newsradar.retention import clean_staging

        settings = get_settings()
        cutoff = datetime.now(UTC) - timedelta(days=settings.staging_retention_days)
        removed = clean_staging(settings, cutoff)
        print(f"removed {len(removed)} batches older than {cutoff:%Y-%m-%d}: {removed[:20]}")
        return len(removed)

    @task
    def seen_compaction() -> dict[str, int]:
        from datetime import UTC, datetime, timedelta

        from crawlers.state import CrawlState

        settings = get_settings()
        cutoff = datetime.now(UTC) - timedelta(days=settings.seen_retention_days)
        with CrawlState(settings.crawl_state_path) as state:
            removed = state.compact(cutoff)
            print(f"removed {removed}; left {state.counts()}")
        return removed

    @task
    def failures_compaction() -> int:
        from index.failures import FailureStore

        store = FailureStore(get_settings())
        folded = store.compact()
        print(f"folded {folded} failure journal files; {len(store.load())} entries pending")
        return folded

    index_health() >> template_check()
    staging_cleanup()
    seen_compaction()
    failures_compaction()


newsradar_maintenance()
