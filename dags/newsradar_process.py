"""newsradar_process: enrich a crawled batch stage by stage and index it; emits indexed articles."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import INDEXED_ARTICLES, RAW_ARTICLES, dag_args
from enrich.stages import STAGE_NAMES, STAGES

DOC = f"""
### newsradar_process

Runs whenever `newsradar_crawl` publishes a batch (asset `newsradar_raw_articles`). Each task reads
the previous stage's batch from staging and writes its own (`<staging>/batches/<run_id>/NN-stage.jsonl`);
only paths travel through XCom, never articles. The stage tasks come from the enrichment stage
registry (`enrich/stages.py`), the same stages `newsradar ingest` runs:

`collect` → {" → ".join(f"`{name}`" for name in STAGE_NAMES)} → `index`

{chr(10).join(f"- **{stage.name}**: {stage.summary}." for stage in STAGES)}
- **index**: bulk into `<prefix>-articles` with stable ids; updates the asset `newsradar_indexed_articles`,
  which starts `newsradar_alerts`.

**Manual runs**: give `manifest` (a crawl batch's `manifest.json`) or `raw` (paths of raw JSON-lines files).

**When it fails**
- `collect`: the manifest or a raw file is missing (staging cleaned too early?); re-crawl.
- `translate`: the translation server is down; the stage records `failed` per article and goes on —
  a task failure here means a bug; see the log.
- `dedupe` / `index`: Elasticsearch is unreachable or rejected documents. Start it, then clear the
  task: ids are stable and every rejected document is kept for retry with its reason, never dropped.
Every task can be cleared and re-run for the same batch without creating duplicates.
"""


@dag(
    dag_id="newsradar_process",
    schedule=[RAW_ARTICLES],
    **dag_args(DOC, max_active_runs=2, queue="enrich"),
    params={
        "manifest": Param(None, type=["null", "string"], description="a crawl batch's manifest.json"),
        "raw": Param([], type="array", items={"type": "string"}, description="raw JSON-lines batch files"),
    },
)
def newsradar_process() -> None:
    @task
    def collect() -> str:
        import json

        import fsspec

        from dagkit import stage_path
        from newsradar.batches import read_articles, write_articles
        from newsradar.settings import get_settings

        context = get_current_context()
        params = context["params"]
        manifests = [params["manifest"]] if params.get("manifest") else []
        for event in context["triggering_asset_events"].get(RAW_ARTICLES, []):
            if event.extra.get("manifest"):
                manifests.append(event.extra["manifest"])
        raw: list[str] = list(params.get("raw") or [])
        for manifest in manifests:
            with fsspec.open(manifest, "rt", encoding="utf-8") as handle:
                raw.extend(json.load(handle)["raw"])
        if not raw:
            raise ValueError("nothing to process: no triggering batch and no 'manifest' or 'raw' param")
        by_id = {article.id: article for path in raw for article in read_articles(path)}
        target = stage_path(get_settings(), context["run_id"], 0, "raw")
        print(f"{len(by_id)} articles from {len(raw)} raw files")
        write_articles(target, by_id.values())
        return target

    @task
    def run_stage(path: str, name: str, step: int) -> str:
        """One enrichment stage over the batch at ``path``; writes and returns the next batch."""
        from dagkit import stage_path, transform
        from enrich.stages import StageContext, stage
        from index.client import get_client
        from index.stories import story_state
        from newsradar.settings import get_settings

        settings = get_settings()
        context = StageContext(settings, stories=story_state(get_client(settings), settings))
        target = stage_path(settings, get_current_context()["run_id"], step, name)
        return transform(path, target, lambda batch: stage(name).run(batch, context))

    @task(outlets=[INDEXED_ARTICLES])
    def index(path: str) -> dict[str, Any]:
        from index.client import get_client
        from index.indexer import index_articles
        from newsradar.batches import read_articles
        from newsradar.settings import get_settings

        settings = get_settings()
        report = index_articles(get_client(settings), settings, read_articles(path))
        for doc_id, reason in report.failed:
            print(f"FAILED {doc_id}: {reason}")
        summary: dict[str, Any] = {
            "batch": path,
            "indexed": report.indexed,
            "failed": len(report.failed),
            "quarantined": report.quarantined,
            "per_language": dict(report.by_lang),
        }
        get_current_context()["outlet_events"][INDEXED_ARTICLES].extra = summary
        print(summary)
        # Documents rejected for good are quarantined (`newsradar index failures`): they must not hold
        # back the rest of the batch or its alerts. Anything else (node down, 429) fails the task, so
        # Airflow retries it; the kept documents go out with that retry.
        retryable = len(report.failed) - report.quarantined
        if retryable:
            raise RuntimeError(f"{retryable} documents could not be indexed (listed above, kept for retry)")
        return summary

    path: Any = collect()  # an XComArg: the batch path, resolved when each task runs
    for step, name in enumerate(STAGE_NAMES, start=1):
        path = run_stage.override(task_id=name)(path, name, step)
    index(path)


newsradar_process()
