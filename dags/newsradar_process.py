"""newsradar_process: enrich a crawled batch stage by stage and index it; emits indexed articles."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from newsradar.dagkit import INDEXED_ARTICLES, RAW_ARTICLES, TAGS, default_args

DOC = """
### newsradar_process

Runs whenever `newsradar_crawl` publishes a batch (asset `newsradar_raw_articles`). Each task reads
the previous stage's batch from staging and writes its own (`<staging>/batches/<run_id>/NN-stage.jsonl`);
only paths travel through XCom, never articles.

`collect` → `language` → `translate` → `embed` → `classify` → `dedupe` → `index`

- **language**: de / en / zh / other, from script, py3langid and the source's hint.
- **translate**: English title and lead with the configured backend (`NEWSRADAR_TRANSLATION_BACKEND`);
  without one, the name glossary still gives English names.
- **embed**: multilingual vectors of title + lead (model name and dimension stored with each vector).
- **classify**: event types (release, ban, restriction, regulation, other) and canonical entities.
- **dedupe**: exact and near duplicates and cross-language stories; needs vectors and entities, so it
  runs after them. Story state lives in Elasticsearch, so re-runs and parallel workers agree.
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
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    doc_md=DOC,
    tags=TAGS,
    default_args=default_args(queue="enrich"),
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

        from newsradar.batches import read_articles, write_articles
        from newsradar.dagkit import stage_path
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
    def language(path: str) -> str:
        from enrich.pipeline import detect_languages
        from newsradar.dagkit import stage_path, transform
        from newsradar.settings import get_settings

        target = stage_path(get_settings(), get_current_context()["run_id"], 1, "language")
        return transform(path, target, detect_languages)

    @task
    def translate(path: str) -> str:
        from enrich.translate import translate_articles
        from newsradar.dagkit import stage_path, transform
        from newsradar.settings import get_settings

        settings = get_settings()
        target = stage_path(settings, get_current_context()["run_id"], 2, "translate")
        return transform(path, target, lambda batch: print(translate_articles(batch, settings)))

    @task
    def embed(path: str) -> str:
        from enrich.embed import embedder_for, ensure_same_model
        from enrich.pipeline import embed as embed_stage
        from index.client import get_client
        from index.mapping import articles_alias
        from newsradar.dagkit import stage_path, transform
        from newsradar.settings import get_settings

        settings = get_settings()
        embedder = embedder_for(settings)
        # One index, one vector space: refuse before computing vectors the index cannot take.
        ensure_same_model(get_client(settings), articles_alias(settings), embedder.name, embedder.dim)
        target = stage_path(settings, get_current_context()["run_id"], 3, "embed")
        return transform(path, target, lambda batch: embed_stage(batch, settings, embedder))

    @task
    def classify(path: str) -> str:
        from enrich.pipeline import classify_articles
        from newsradar.dagkit import stage_path, transform
        from newsradar.settings import get_settings

        target = stage_path(get_settings(), get_current_context()["run_id"], 4, "classify")
        return transform(path, target, classify_articles)

    @task
    def dedupe(path: str) -> str:
        from enrich.stories import assign_stories
        from index.client import get_client
        from newsradar.dagkit import stage_path, transform
        from newsradar.settings import get_settings

        settings = get_settings()
        client = get_client(settings)
        target = stage_path(settings, get_current_context()["run_id"], 5, "dedupe")
        return transform(path, target, lambda batch: assign_stories(batch, settings, client))

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
            "per_language": dict(report.by_lang),
        }
        get_current_context()["outlet_events"][INDEXED_ARTICLES].extra = summary
        print(summary)
        if report.failed:
            raise RuntimeError(f"{len(report.failed)} documents were rejected (listed above, kept for retry)")
        return summary

    index(dedupe(classify(embed(translate(language(collect()))))))  # type: ignore[arg-type]


newsradar_process()
