"""newsradar_crawl: one mapped Scrapy crawl per source, every few minutes; emits raw articles."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import RAW_ARTICLES, dag_args
from newsradar.settings import get_settings

SETTINGS = get_settings()

DOC = f"""
### newsradar_crawl

Collects new coverage within minutes. Every `{SETTINGS.crawl_schedule}` (`NEWSRADAR_CRAWL_SCHEDULE`)
`select_sources` picks the enabled sources of the catalog (`NEWSRADAR_CRAWL_SOURCES`: `catalog` =
`crawlers/sources.yaml`, `sample` = the project's sample site on the replay server) **that are due**:
a source that had news is polled again after `NEWSRADAR_CRAWL_POLL_MIN_S`
({SETTINGS.crawl_poll_min_s:.0f} s), a quiet one less and less often (x{SETTINGS.crawl_poll_backoff} a
quiet poll, up to {SETTINGS.crawl_poll_max_s:.0f} s), a failing one backs off faster. The due
sources of one host share **one mapped `crawl` task** in the pool `{SETTINGS.crawl_pool}`, so the
per-host politeness limits hold for the host as a whole: a Scrapy subprocess that obeys robots.txt,
sends conditional GETs (an unchanged feed costs one 304) and skips URLs already seen, and that ends after
`NEWSRADAR_CRAWL_SOURCE_TIMEOUT` ({SETTINGS.crawl_source_timeout:.0f} s) keeping what it fetched.
A crawl with new articles writes its batch (`<staging>/batches/<run_id>/raw/<host>.jsonl` and a
manifest) and updates the asset `newsradar_raw_articles` itself, which starts `newsradar_process`
at once: a slow host never holds back another's articles. A crawl with nothing new is *skipped*.

Next poll per source: `newsradar sources schedule` (or the `select_sources` log).

**Manual runs** take `sources` (names; empty = all due), `lang` (de, en, zh), `catalog` (the path of
another catalog file, e.g. to try a new source before adding it) and `force` (poll every selected
source now, due or not); naming `sources` or a `catalog` polls them now too.

**When it fails**
- a `crawl` map index fails: that source's site is down or changed; the log lists each failed URL
  with its reason (status, timeout, robots, size cap, broken feed). Other sources are unaffected;
  the source is polled less often until it recovers. Check it with `newsradar sources check --live`;
  disable it in the catalog if it stays broken.
- `select_sources` fails: the catalog is invalid; `newsradar sources check` names file, entry and field.
- Re-running is safe: the seen-URL store makes a re-crawl fetch only what is new.
"""


@dag(
    dag_id="newsradar_crawl",
    schedule=SETTINGS.crawl_schedule,
    # Runs may overlap: a source being polled is leased, so a slow crawl never blocks the next minute.
    **dag_args(DOC, max_active_runs=3),
    params={
        "sources": Param([], type="array", items={"type": "string"}, description="source names; empty = all"),
        "lang": Param(None, type=["null", "string"], enum=[None, "de", "en", "zh"], description="language"),
        "catalog": Param(None, type=["null", "string"], description="another catalog YAML file (path)"),
        "force": Param(False, type="boolean", description="poll every selected source now, due or not"),
    },
)
def newsradar_crawl() -> None:
    @task
    def select_sources() -> list[list[dict[str, Any]]]:
        from crawlers.catalog import load_catalog, sample_catalog, select
        from crawlers.schedule import PollSchedule, host, policy_from
        from crawlers.state import CrawlState

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
        with CrawlState(settings.crawl_state_path) as state:
            schedule = PollSchedule(state, policy_from(settings))
            # A manual run that names sources or a catalog means "poll these now", due or not.
            if params.get("force") or params.get("sources") or params.get("catalog"):
                groups: dict[str, list[Any]] = {}
                for source in chosen:
                    schedule.start(source.name)
                    groups.setdefault(host(source), []).append(source)
                due = list(groups.values())
            else:
                due = schedule.due(chosen)
            names = {source.name for group in due for source in group}
            waiting = sorted((p.next_at, p.source) for p in schedule.all() if p.source not in names)
        print(f"{len(names)} of {len(chosen)} sources due: {', '.join(sorted(names)) or '-'}")
        for next_at, name in waiting[:20]:
            print(f"  next poll of {name}: {next_at:%H:%M:%S}")
        return [[source.model_dump(mode="json") for source in group] for group in due]

    @task(
        pool=SETTINGS.crawl_pool,
        queue="crawl",
        max_active_tis_per_dagrun=SETTINGS.crawl_pool_slots,
        outlets=[RAW_ARTICLES],
    )
    def crawl(sources: list[dict[str, Any]]) -> dict[str, Any]:
        """Poll the due sources of one host in one crawl; with new articles, publish the batch (asset
        event) at once, else skip."""
        import json
        import re

        import fsspec
        from airflow.sdk.exceptions import AirflowSkipException

        from crawlers.catalog import Source
        from crawlers.run import CrawlError, default_output, run_crawl
        from crawlers.schedule import PollSchedule, host, policy_from
        from crawlers.state import CrawlState

        settings = get_settings()
        context = get_current_context()
        specs = [Source.model_validate(source) for source in sources]
        name = re.sub(r"[^a-z0-9.-]+", "-", host(specs[0]))
        output = default_output(settings, context["run_id"], name)
        limit = settings.crawl_source_timeout
        try:
            result = run_crawl(
                specs,
                output,
                settings=settings,
                extra_settings={"CLOSESPIDER_TIMEOUT": str(limit)},
                timeout=limit + 60,
            )
        except CrawlError:
            with CrawlState(settings.crawl_state_path) as state:
                for spec in specs:
                    PollSchedule(state, policy_from(settings)).record(spec.name, 0, failed=True)
            raise
        with CrawlState(settings.crawl_state_path) as state:
            schedule = PollSchedule(state, policy_from(settings))
            for spec in specs:
                counts = result.stats["sources"].get(spec.name, {})
                fetched = sum((counts.get("documents") or {}).values())
                new = int(counts.get("extracted", 0))
                poll = schedule.record(spec.name, new, failed=not fetched and bool(counts.get("failed")))
                print(f"{spec.name}: {new} new; next poll {poll.next_at:%H:%M:%S} ({poll.interval_s:.0f} s)")
        for error in result.stats["errors"]:
            print(f"FAILED {error['kind']} {error['url']}: {error['reason']}")
        if not result.articles:
            raise AirflowSkipException(f"{name}: nothing new")
        manifest = output.removesuffix(".jsonl") + ".manifest.json"
        with fsspec.open(manifest, "wt", encoding="utf-8") as handle:
            json.dump({"raw": [output], "articles": result.articles}, handle)
        context["outlet_events"][RAW_ARTICLES].extra = {"manifest": manifest, "articles": result.articles}
        print(f"{result.articles} new articles -> {output}")
        return {"host": name, "path": output, "articles": result.articles}

    crawl.expand(sources=select_sources())


newsradar_crawl()
