"""newsradar pipeline DAG: crawl the given feeds, enrich the articles, index them.

Heavy imports happen inside the tasks: the scheduler parses this file often.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

INDEXED_ARTICLES = Asset("newsradar://indexed-articles")

DOC = """
### newsradar_pipeline

Crawls the feeds given in the `sources` param (one mapped task per source; Scrapy runs as a
subprocess), detects each article's language, embeds title and lead with the multilingual model
and indexes the articles into Elasticsearch (`<prefix>-articles`). Batches move between tasks as
paths on the staging store, never as XCom payloads.

**When it fails**
- `crawl`: the source is unreachable or its feed is broken; the task log names the URL. Other
  sources still run; fix or disable the source and clear the task.
- `process`: a bad article record; the log shows the validation error.
- `index`: Elasticsearch is down or rejected documents (the log lists every id with its reason).
  Start it (`newsradar es start`) and clear the task: indexing is idempotent (stable ids).
"""

SOURCES_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "feeds"],
        "properties": {
            "name": {"type": "string"},
            "lang": {"type": ["string", "null"]},
            "country": {"type": ["string", "null"]},
            "feeds": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
    },
}


@dag(
    dag_id="newsradar_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["newsradar"],
    default_args={
        "owner": "newsradar",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(minutes=30),
    },
    params={
        "sources": Param(
            [], schema=SOURCES_SCHEMA, description="Sources to crawl: name, lang, country, feeds"
        )
    },
)
def newsradar_pipeline() -> None:
    @task
    def list_sources() -> list[dict[str, Any]]:
        sources: list[dict[str, Any]] = get_current_context()["params"]["sources"]
        if not sources:
            raise ValueError("param 'sources' is empty: give at least one source with feeds")
        return sources

    @task
    def crawl(source: dict[str, Any]) -> str:
        from crawlers.catalog import source_from_params
        from crawlers.run import default_output, run_crawl
        from newsradar.settings import get_settings

        context = get_current_context()
        settings = get_settings()
        spec = source_from_params(source)
        output = default_output(settings, context["run_id"], spec.name)
        result = run_crawl([spec], output, settings=settings)
        counts = result.stats["sources"].get(spec.name, {})
        print(f"crawled {spec.name}: {result.articles} articles -> {output}")
        print(f"stats ({result.stats_file}): {counts}")
        for error in result.stats["errors"]:
            print(f"FAILED {error['kind']} {error['url']}: {error['reason']}")
        return output

    @task
    def process(raw_paths: list[str]) -> str:
        from enrich.pipeline import enrich
        from newsradar.batches import batch_dir, read_articles, write_articles
        from newsradar.settings import get_settings

        settings = get_settings()
        articles = [article for path in raw_paths for article in read_articles(path)]
        enriched = enrich(articles, settings)
        target = f"{batch_dir(settings, get_current_context()['run_id'])}/enriched.jsonl"
        count = write_articles(target, enriched)
        print(f"enriched {count} articles -> {target}")
        return target

    @task(outlets=[INDEXED_ARTICLES])
    def index(enriched_path: str) -> dict[str, int]:
        from index.client import get_client
        from index.indexer import index_articles
        from newsradar.batches import read_articles
        from newsradar.settings import get_settings

        settings = get_settings()
        report = index_articles(get_client(settings), settings, read_articles(enriched_path))
        for doc_id, reason in report.failed:
            print(f"FAILED {doc_id}: {reason}")
        if report.failed:
            raise RuntimeError(
                f"{len(report.failed)} documents failed to index (listed above); retry the task"
            )
        return {"indexed": report.indexed}

    index(process(crawl.expand(source=list_sources())))  # type: ignore[arg-type]  # XComArg at parse time


newsradar_pipeline()
