"""newsradar_process: enrich a crawled batch and index it; emits indexed articles."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import INDEXED_ARTICLES, RAW_ARTICLES, dag_args
from enrich.stages import STAGES

DOC = f"""
### newsradar_process

Runs whenever `newsradar_crawl` publishes a batch (asset `newsradar_raw_articles`). Tasks pass batches
as paths on the staging store (`<staging>/batches/<run_id>/NN-name.jsonl`), never articles in XCom:

`collect` → `enrich` → `index`

- **collect**: the crawl batch's raw files, deduplicated by article id, as `00-raw.jsonl`.
- **enrich**: the enrichment stages of the stage registry (`enrich/stages.py`), the same ones
  `newsradar ingest` runs, in one process so each model is loaded once and the vector made by `embed` is
  reused in memory; the log gives each stage's time. Writes `01-enriched.jsonl`.
{chr(10).join(f"  - **{stage.name}**: {stage.summary}." for stage in STAGES)}
- **index**: bulk into `<prefix>-articles` with stable ids; updates the asset `newsradar_indexed_articles`,
  which starts `newsradar_alerts`.

**Manual runs**: give `manifest` (a crawl batch's `manifest.json`) or `raw` (paths of raw JSON-lines files).

**When it fails**
- `collect`: the manifest or a raw file is missing (staging cleaned too early?); re-crawl.
- `enrich`: the translation server being down is not a failure (the stage records `failed` per article
  and goes on); Elasticsearch being unreachable is (story assignment reads and writes story state): start
  it, then clear the task. Any other failure is a bug; the traceback names the stage.
- `index`: Elasticsearch is unreachable or rejected documents. Start it, then clear the
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
    def enrich(path: str) -> str:
        """All enrichment stages over the batch at ``path``: one task, not one per stage, because each
        task process loads its own models (the embedding model alone is ~0.4 s of CPU, and classify
        needs it again) and every hand-over between tasks waits for the scheduler."""
        from dagkit import enriched_path
        from enrich.stages import StageContext, run_stages
        from index.client import get_client
        from index.stories import story_state
        from newsradar.batches import read_articles, write_articles
        from newsradar.settings import get_settings

        settings = get_settings()
        context = StageContext(settings, stories=story_state(get_client(settings), settings))
        report = run_stages(list(read_articles(path)), context)
        print(report.summary())
        target = enriched_path(settings, get_current_context()["run_id"])
        count = write_articles(target, report.articles)
        print(f"{count} articles: {path} -> {target}")
        return target

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

    raw: Any = collect()  # XComArgs: batch paths, resolved when each task runs
    enriched: Any = enrich(raw)
    index(enriched)


newsradar_process()
