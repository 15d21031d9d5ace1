"""newsradar_crawl: one mapped Scrapy crawl per source, every few minutes; emits raw articles."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import RAW_ARTICLES, dag_args
from newsradar.settings import get_settings

SETTINGS = get_settings()

DOC = f"""
### newsradar_crawl

Collects new coverage. Every `{SETTINGS.crawl_schedule}` (`NEWSRADAR_CRAWL_SCHEDULE`) it selects the
enabled sources of the catalog (`NEWSRADAR_CRAWL_SOURCES`: `catalog` = `crawlers/sources.yaml`,
`sample` = the project's sample site on the replay server), runs **one mapped `crawl` task per
source** in the pool `{SETTINGS.crawl_pool}` (caps concurrent crawls), each a Scrapy subprocess that
obeys robots.txt, sends conditional GETs for feeds and skips URLs already seen. Articles land as JSON
lines under `<staging>/batches/<run_id>/raw/<source>.jsonl` with a `.stats.json` beside them.
`publish` writes the batch manifest and updates the asset `newsradar_raw_articles`, which starts
`newsradar_process`. No new article: `publish` is skipped and nothing downstream runs.

**Manual runs** take `sources` (names; empty = all enabled), `lang` (de, en, zh) and `catalog` (the
path of another catalog file, e.g. to try a new source before adding it).

**When it fails**
- a `crawl` map index fails: that source's site is down or changed; the log lists each failed URL
  with its reason (status, timeout, robots, size cap, broken feed). Other sources are unaffected.
  Check it with `newsradar sources check --live`; disable it in the catalog if it stays broken.
- `select_sources` fails: the catalog is invalid; `newsradar sources check` names file, entry and field.
- Re-running is safe: the seen-URL store makes a re-crawl fetch only what is new.
"""


@dag(
    dag_id="newsradar_crawl",
    schedule=SETTINGS.crawl_schedule,
    **dag_args(DOC),
    params={
        "sources": Param([], type="array", items={"type": "string"}, description="source names; empty = all"),
        "lang": Param(None, type=["null", "string"], enum=[None, "de", "en", "zh"], description="language"),
        "catalog": Param(None, type=["null", "string"], description="another catalog YAML file (path)"),
    },
)
def newsradar_crawl() -> None:
    @task
    def select_sources() -> list[dict[str, Any]]:
        from crawlers.catalog import load_catalog, sample_catalog, select

        settings = get_settings()
        params = get_current_context()["params"]
        if params.get("catalog"):
            from pathlib import Path

            catalog = load_catalog(Path(params["catalog"]))
        elif settings.crawl_sources == "sample":
            from stack.replay import SAMPLE_SITE

            base = settings.sample_base_url or f"http://127.0.0.1:{settings.replay_port}"
            catalog = sample_catalog(base, SAMPLE_SITE)
        else:
            catalog = load_catalog(settings.sources_catalog) if settings.sources_catalog else load_catalog()
        chosen = select(catalog, params.get("sources") or None, params.get("lang"))
        print(f"{len(chosen)} sources: {', '.join(source.name for source in chosen)}")
        return [source.model_dump(mode="json") for source in chosen]

    @task(pool=SETTINGS.crawl_pool, queue="crawl", max_active_tis_per_dagrun=SETTINGS.crawl_pool_slots)
    def crawl(source: dict[str, Any]) -> dict[str, Any]:
        from crawlers.catalog import Source
        from crawlers.run import default_output, run_crawl

        settings = get_settings()
        spec = Source.model_validate(source)
        output = default_output(settings, get_current_context()["run_id"], spec.name)
        result = run_crawl([spec], output, settings=settings)
        counts = result.stats["sources"].get(spec.name, {})
        print(f"crawled {spec.name}: {result.articles} new articles -> {output}; {counts}")
        for error in result.stats["errors"]:
            print(f"FAILED {error['kind']} {error['url']}: {error['reason']}")
        return {"source": spec.name, "path": output, "articles": result.articles}

    @task(outlets=[RAW_ARTICLES])
    def publish(results: list[dict[str, Any]]) -> str:
        import json

        import fsspec
        from airflow.sdk.exceptions import AirflowSkipException

        from newsradar.batches import batch_dir

        context = get_current_context()
        fresh = [r for r in results if r["articles"] > 0]
        total = sum(r["articles"] for r in fresh)
        if not fresh:
            raise AirflowSkipException("no new articles in this cycle")
        manifest = f"{batch_dir(get_settings(), context['run_id'])}/manifest.json"
        with fsspec.open(manifest, "wt", encoding="utf-8") as handle:
            json.dump({"raw": [r["path"] for r in fresh], "articles": total}, handle)
        context["outlet_events"][RAW_ARTICLES].extra = {"manifest": manifest, "articles": total}
        print(f"{total} new articles from {len(fresh)} sources -> {manifest}")
        return manifest

    publish(crawl.expand(source=select_sources()))  # type: ignore[arg-type]  # XComArg at parse time


newsradar_crawl()
