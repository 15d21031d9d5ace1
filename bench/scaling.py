"""Scaling curve: the cost of 1,000 new articles as the index grows (1k, 10k, 100k articles).

Run ``python -m bench.scaling [--sizes 1000,10000,100000] [--batch 1000] [--repeats 3]``. For each
size the state is filled to that many articles (articles index, dedupe records and stories,
bulk-loaded under a bench-only prefix, dropped at the end); then batches of new articles go through
the three stages whose cost depends on what is already indexed (the median batch is reported):

* story assignment (the `dedupe` stage over `index.stories`: per batch one msearch with the exact and
  LSH look-ups and one filtered kNN query per article, one redirect search, one bulk of records and
  one of the touched stories), reported as articles/s against the 22 articles/s measured before the
  batch state (45 s per 1,000 new articles at 100k indexed), with the Elasticsearch CPU
  it costs;
* indexing (`index.indexer.index_articles`, with the story fields of every touched story),
* alert evaluation (every shipped rule in `rules/`, over the batch's window, outbox writes included).

Embedding is left out on purpose: its cost does not depend on the index size (see
`bench.enrich_speed`), so articles carry precomputed vectors — story centroids with noise, half of
the batch joining recent stories, half starting new ones. Texts are synthetic (random words per
story in a fixed order, each article adding a few words of its own, as wire copies do; names of
real labs and countries so rules match). The preloaded articles arrive at 250 a day
(``--per-day``), counted back from now (article 0 is the newest; growing the index adds older
articles: 100,000 are 400 days of news, 58 week indices of story records), so the 96 h story window
holds about 1,000 of them at every size. Why: a story look-up compares an article with the window's
articles, so its cost follows the news rate; the smallest size must already fill the window, or the
growth measured is the window filling up (at 1,000 a day, 1k indexed fills a quarter of it), not the
index growing.

Baseline: the same batch's cost at the smallest size, same run; the ratio is the growth.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from bench.report import Row, bench_prefix, drop_prefix, ensure_node, es_cpu_ms, peak_rss_mib, reset_peak_rss
from enrich.dedupe import StoryDoc, article_input, fingerprint
from index.indexer import to_document
from index.mapping import (
    EMBEDDING_DIM,
    articles_alias,
    dedupe_index,
    dedupe_partition,
    dedupe_records,
    ensure_articles_index,
    stories_index,
)
from index.stories import EsState, base_doc, doc_to_story, record_to_doc, story_to_doc
from newsradar.article import Article
from newsradar.settings import Settings, get_settings

MODEL = "bench-synthetic"
BEFORE_PER_S = 22.0  # story assignment before the batch state: 45 s per 1,000 new articles
TARGET_PER_S = 110.0
PER_DAY = 250
STORY_SIZE = 3
ENTITIES = [
    "Nvidia",
    "Alibaba",
    "DeepSeek",
    "Baidu",
    "OpenAI",
    "Germany",
    "EU",
    "Huawei",
    "Tencent",
    "Zhipu AI",
]
EVENTS = ["release", "ban", "restriction", "regulation", "other"]
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "bra", "kel", "mon", "tar", "wen", "dor"]
VOCAB = sorted({"".join(random.Random(i).choices(_SYLLABLES, k=3)) for i in range(4000)})
ZH_VOCAB = ["".join(chr(0x4E00 + random.Random(-i).randrange(5000)) for _ in range(2)) for i in range(3000)]


def story_features(story: int) -> tuple[np.ndarray, list[str], str, str]:
    """Deterministic per story: centroid vector, words, language, main entity."""
    rng = random.Random(story)
    centroid = np.random.default_rng(story).normal(size=EMBEDDING_DIM)
    lang = rng.choice(["de", "en", "zh"])
    words = rng.sample(ZH_VOCAB if lang == "zh" else VOCAB, 70)
    return centroid / np.linalg.norm(centroid), words, lang, rng.choice(ENTITIES)


def article(n: int, story: int, published: datetime) -> Article:
    centroid, words, lang, entity = story_features(story)
    rng = random.Random(n)
    noise = np.random.default_rng(n + 1_000_000_000).normal(
        scale=0.15 / np.sqrt(EMBEDDING_DIM), size=EMBEDDING_DIM
    )
    vector = centroid + noise
    vector /= np.linalg.norm(vector)
    own = rng.sample(ZH_VOCAB if lang == "zh" else VOCAB, 8)
    sep = "" if lang == "zh" else " "
    body = words[20:] + own  # the story's text in its order plus a few own words: a wire copy
    return Article(
        id=f"scale-{n}",
        url=f"https://scale.invalid/{n}",
        canonical_url=f"https://scale.invalid/{n}",
        source=f"outlet{rng.randrange(60)}",
        title=sep.join([entity, *words[:6]]),
        lead=sep.join(words[6:20]),
        text=sep.join(body) + f" {entity} {rng.randrange(10**6)}",
        published=published,
        fetched_at=published,
        lang=lang,
        country=rng.choice(["DE", "US", "CN", "GB"]),
        embedding=[float(x) for x in vector],
        embedding_model=MODEL,
        embedding_dim=EMBEDDING_DIM,
        event_types=[EVENTS[story % len(EVENTS)]],
        event_type=EVENTS[story % len(EVENTS)],
        ai_related=True,  # classified AI news: the shipped rules skip other news by default
        entities=[entity],
    )


def preload(
    client: Elasticsearch, settings: Settings, start: int, end: int, now: datetime, per_day: int = PER_DAY
) -> float:
    """Articles `start`..`end` (oldest first, `per_day` a day ending now) in all three indices."""
    began = time.perf_counter()
    alias = ensure_articles_index(client, settings)
    EsState(client, settings, EMBEDDING_DIM)  # creates the stories index and the week indices' template
    indices = [alias, dedupe_records(settings), stories_index(settings)]
    client.indices.put_settings(index=",".join(indices), settings={"index": {"refresh_interval": "-1"}})
    stories: dict[str, StoryDoc] = {}
    if start % STORY_SIZE:  # the story the previous preload left open
        sid = f"story-{start // STORY_SIZE}"
        found = client.options(ignore_status=404).get(index=stories_index(settings), id=sid)
        if found.get("found"):
            stories[sid] = doc_to_story(found["_source"])

    def actions() -> Any:
        for n in range(start, end):
            published = now - timedelta(days=n / per_day)  # newest first: a larger index reaches further back
            item = article(n, n // STORY_SIZE, published)
            item.story_id = f"story-{n // STORY_SIZE}"
            record = fingerprint(article_input(item))
            record.story_id = item.story_id
            record.match = "new" if n % STORY_SIZE == 0 else "story"
            doc = stories.get(item.story_id) or StoryDoc(item.story_id, created_at=published)
            article_doc = to_document(item, now=item.published)
            stories[item.story_id] = doc.with_members([record])
            yield {"_index": alias, "_id": item.id, "_source": article_doc}
            # as index.stories stores a record: all of it in the base index, the vector in its week's copy
            yield {"_index": dedupe_index(settings), "_id": item.id, "_source": base_doc(record)}
            yield {
                "_index": dedupe_partition(settings, published),
                "_id": item.id,
                "_source": record_to_doc(record),
            }
            if n % STORY_SIZE == STORY_SIZE - 1 or n == end - 1:
                yield {
                    "_index": stories_index(settings),
                    "_id": item.story_id,
                    "_source": story_to_doc(stories[item.story_id]),
                }
            if n % STORY_SIZE == STORY_SIZE - 1:
                del stories[item.story_id]  # complete: never touched again by the preload

    bulk(client.options(request_timeout=600), actions(), chunk_size=500)
    client.indices.put_settings(index=",".join(indices), settings={"index": {"refresh_interval": "1s"}})
    client.indices.refresh(index=",".join(indices))
    settle(client, indices)
    return time.perf_counter() - began


def settle(client: Elasticsearch, indices: list[str], timeout: float = 900.0) -> None:
    """Wait until the node has flushed and finished merging what the preload wrote. A bulk load of
    90,000 articles leaves minutes of segment merging (HNSW graphs rebuilt per merge) that a grown
    index has long behind it; timed batches during it would measure the bulk load, not the growth."""
    names = ",".join(indices)
    client.options(request_timeout=timeout).indices.flush(index=names)
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:  # three idle probes in a row: merges can chain
        merges = client.indices.stats(index=names, metric="merge")["_all"]["total"]["merges"]
        quiet = quiet + 1 if merges["current"] == 0 else 0
        time.sleep(2)


def new_batch(size: int, count: int, now: datetime, salt: int = 0) -> list[Article]:
    """Half join one of the 300 most recent preloaded stories, half start new ones (ids never used
    before)."""
    rng = random.Random(size * 10 + salt)
    recent = max(1, min(size // STORY_SIZE, 300))  # stories 0..299: articles of the last day
    out = []
    for k in range(count):
        n = 10_000_000 * (1 + len(str(size))) + 1_000_000 * salt + k
        fresh = 5_000_000 + 1_000_000 * salt + size + k
        story = rng.randrange(recent) if k % 2 == 0 else fresh
        out.append(article(n, story, now - timedelta(minutes=rng.randrange(60))))
        out[-1].story_id = None
    return out


def drop_articles(client: Elasticsearch, settings: Settings, added: list[Article]) -> None:
    """Take measured batches out of the articles and dedupe indices again, so the next (larger) size
    holds its preload and nothing else: the 96 h window then holds the same ~4,000 preloaded articles
    at 10k and 100k instead of growing with every size's batches."""
    actions = (
        {"_op_type": "delete", "_index": index, "_id": a.id}
        for a in added
        for index in (
            articles_alias(settings),
            dedupe_index(settings),
            dedupe_partition(settings, a.published),
        )
    )
    bulk(client, actions, raise_on_error=False)
    client.indices.refresh(index=f"{articles_alias(settings)},{dedupe_records(settings)}")


def measure_batch(client: Elasticsearch, settings: Settings, batch: list[Article]) -> dict[str, float]:
    from alerts.evaluate import evaluate_rule
    from alerts.store import load_rules
    from enrich.stages import StageContext, stage
    from index.indexer import index_articles
    from index.stories import story_state

    rules = [rule for rule in load_rules(None, settings).rules if rule.enabled]
    since = datetime.now(UTC)
    es0, cpu0 = es_cpu_ms(client), time.process_time()
    reset_peak_rss()
    t0 = time.perf_counter()
    records = stage("dedupe").run(batch, StageContext(settings, stories=story_state(client, settings)))
    t1 = time.perf_counter()
    es1, cpu1 = es_cpu_ms(client), time.process_time()
    assign_rss = peak_rss_mib()
    reset_peak_rss()
    report = index_articles(client, settings, batch)
    if report.failed:
        raise RuntimeError(f"indexing failed: {report.failed[:3]}")
    client.indices.refresh(index=articles_alias(settings))
    t2 = time.perf_counter()
    index_rss = peak_rss_mib()
    reset_peak_rss()
    matched = 0
    for rule in rules:
        matched += evaluate_rule(client, settings, rule, datetime.now(UTC), since=since).matched
    t3 = time.perf_counter()
    alerts_rss = peak_rss_mib()
    assert isinstance(records, list)
    joined = sum(1 for r in records if r.story_id and r.story_id.startswith("story-"))
    return {
        "assign_s": t1 - t0,
        "assign_cpu_s": cpu1 - cpu0,
        "assign_es_cpu_s": (es1 - es0) / 1000,
        "index_s": t2 - t1,
        "alerts_s": t3 - t2,
        "total_s": t3 - t0,
        "cpu_s": time.process_time() - cpu0,
        "es_cpu_s": (es_cpu_ms(client) - es0) / 1000,
        "joined_existing": joined,
        "meant_to_join": (len(batch) + 1) // 2,
        "matched_stories": matched,
        "rules": len(rules),
        "assign_rss_mib": assign_rss,
        "index_rss_mib": index_rss,
        "alerts_rss_mib": alerts_rss,
    }


def measure(sizes: list[int], batch: int, repeats: int = 1, per_day: int = PER_DAY) -> list[dict[str, Any]]:
    """Per size: the median (by story assignment time) of ``repeats`` timed batches."""
    settings = get_settings().model_copy(update={"index_prefix": bench_prefix("scale")})
    from index.client import get_client

    client = get_client(settings, timeout=600)
    now = datetime.now(UTC)
    have = 0
    results = []
    try:
        for size in sizes:
            if size > have:
                load_s = preload(client, settings, have, size, now, per_day)
                print(f"  preloaded {have:,} -> {size:,} articles in {load_s:.0f} s", file=sys.stderr)
                have = size
            # Untimed warm-up (first queries of a fresh index compile and load structures).
            warm = new_batch(size, 20, datetime.now(UTC), salt=1)
            measure_batch(client, settings, warm)
            added = list(warm)
            rows = []
            for rep in range(repeats):
                articles = new_batch(size, batch, datetime.now(UTC), salt=2 + rep)
                got = measure_batch(client, settings, articles)
                per_1k = 1000 / batch
                row = {
                    "size": size,
                    "batch": batch,
                    "assign_per_s": batch / got["assign_s"],
                    **{k: v * per_1k if k.endswith("_s") else v for k, v in got.items()},
                }
                rows.append(row)
                print(f"  @ {size:,} #{rep + 1}: {row}", file=sys.stderr)
                added += articles  # stays for the next repeat: the state grows as it would
            drop_articles(client, settings, added)  # the next size starts from exactly its preload
            rows.sort(key=lambda r: r["assign_s"])
            results.append({**rows[len(rows) // 2], "repeats": repeats})
    finally:
        drop_prefix(client, settings.index_prefix)
    return results


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 1k and 10k, one batch of 200 each; full: 1k, 10k, 100k, the
    median of 3 batches of 1,000 each)."""
    sizes, batch, repeats = ([1_000, 10_000], 200, 1) if quick else ([1_000, 10_000, 100_000], 1000, 3)
    got = measure(sizes, batch, repeats)
    base = got[0]
    label = f"@ {base['size']:,}"
    rows = []
    for r in got:
        sample = (
            f"median of {r['repeats']} batch(es) of {batch} new articles ({r['joined_existing']} of "
            f"{r['meant_to_join']} joined preloaded stories), {r['rules']} rules"
        )
        rows.append(
            Row(
                "scaling",
                f"story assignment @ {r['size']:,} indexed",
                r["assign_per_s"],
                "articles/s",
                BEFORE_PER_S,
                "before (45 s per 1,000)",
                sample,
                f"target >= {TARGET_PER_S:.0f}/s",
            )
        )
        rows.append(
            Row(
                "scaling",
                f"  story assignment cost @ {r['size']:,}",
                r["assign_s"],
                "s per 1k",
                base["assign_s"],
                label,
                note="flat: ratio <= 1.2",
            )
        )
        rows.append(
            Row(
                "scaling",
                f"  story assignment, Elasticsearch CPU @ {r['size']:,}",
                r["assign_es_cpu_s"],
                "CPU s per 1k",
                52.0,
                "before",
                "own node (NEWSRADAR_ES_URL); a shared node includes others' work",
            )
        )
        rows.append(
            Row(
                "scaling",
                f"cost per 1k articles @ {r['size']:,} indexed",
                r["total_s"],
                "s",
                base["total_s"],
                label,
            )
        )
        for part, name in (("index_s", "indexing"), ("alerts_s", "alert evaluation")):
            rows.append(Row("scaling", f"  {name} @ {r['size']:,}", r[part], "s", base[part], label))
        for part, name in (
            ("assign_rss_mib", "story assignment"),
            ("index_rss_mib", "indexing"),
            ("alerts_rss_mib", "alert evaluation"),
        ):
            rows.append(
                Row(
                    "scaling",
                    f"  peak RSS, {name} @ {r['size']:,}",
                    r[part],
                    "MiB",
                    base[part],
                    label,
                    note="the stage's own peak (counter reset before it); bounded: ratio near 1",
                )
            )
        rows.append(
            Row("scaling", f"  CPU, this process @ {r['size']:,}", r["cpu_s"], "CPU s", base["cpu_s"], label)
        )
        rows.append(
            Row(
                "scaling",
                f"  CPU, Elasticsearch @ {r['size']:,}",
                r["es_cpu_s"],
                "CPU s",
                base["es_cpu_s"],
                label,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="timed batches per size (the median is shown)")
    parser.add_argument("--per-day", type=int, default=PER_DAY, help="preloaded articles per day of news")
    args = parser.parse_args(argv)
    ensure_node()
    got = measure([int(s) for s in args.sizes.split(",")], args.batch, args.repeats, args.per_day)
    base = got[0]
    print(f"per 1,000 new articles, median of {args.repeats} batch(es) of {args.batch}:")
    print(
        f"{'indexed':>9} {'assign/s':>9} {'x 22/s':>7} {'assign s':>9} {'x @1st':>7} {'its CPU s':>10} "
        f"{'its ES CPU s':>13} {'index s':>8} {'alerts s':>9} {'total s':>8} {'ES CPU s':>9} {'joined':>7} "
        f"{'peak RSS MiB (assign/index/alerts)':>35}"
    )
    for r in got:
        print(
            f"{r['size']:>9,} {r['assign_per_s']:9.1f} {r['assign_per_s'] / BEFORE_PER_S:7.2f} "
            f"{r['assign_s']:9.2f} {r['assign_s'] / base['assign_s']:7.2f} {r['assign_cpu_s']:10.2f} "
            f"{r['assign_es_cpu_s']:13.2f} {r['index_s']:8.2f} {r['alerts_s']:9.2f} {r['total_s']:8.2f} "
            f"{r['es_cpu_s']:9.2f} {r['joined_existing']:>4}/{r['meant_to_join']} "
            f"{r['assign_rss_mib']:>15.0f}/{r['index_rss_mib']:.0f}/{r['alerts_rss_mib']:.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
