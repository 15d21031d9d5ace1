"""Scaling curve: the cost of 1,000 new articles as the index grows (1k, 10k, 100k articles).

Run ``python -m bench.scaling [--sizes 1000,10000,100000] [--batch 1000]``. For each size the
state is filled to that many articles (articles index, dedupe records and stories, bulk-loaded
under a bench-only prefix, dropped at the end); then a batch of new articles goes through the
three stages whose cost depends on what is already indexed:

* story assignment (the `dedupe` stage over `index.stories`: URL/hash/LSH look-ups, kNN over the story
  window, one record and one story write per article),
* indexing (`index.indexer.index_articles`, with the story fields of every touched story),
* alert evaluation (every shipped rule in `rules/`, over the batch's window, outbox writes included).

Embedding is left out on purpose: its cost does not depend on the index size (see
`bench.enrich_speed`), so articles carry precomputed vectors — story centroids with noise, half of
the batch joining recent stories, half starting new ones. Texts are synthetic (random words per
story in a fixed order, each article adding a few words of its own, as wire copies do; names of
real labs and countries so rules match). The preloaded articles arrive at 1,000 a
day, so the 96 h story window holds about 4,000 of them whatever the size.

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

from bench.report import Row, bench_prefix, drop_prefix
from enrich.dedupe import Story, fingerprint, merge_story
from index.mapping import EMBEDDING_DIM, articles_alias, ensure_articles_index
from index.stories import (
    article_input,
    dedupe_index,
    doc_to_story,
    ensure_indices,
    record_to_doc,
    stories_index,
    story_to_doc,
)
from newsradar.article import Article
from newsradar.settings import Settings, get_settings

MODEL = "bench-synthetic"
PER_DAY = 1000
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
        entities=[entity],
    )


def preload(client: Elasticsearch, settings: Settings, start: int, end: int, now: datetime) -> float:
    """Articles `start`..`end` (oldest first, PER_DAY a day ending now) in all three indices."""
    began = time.perf_counter()
    alias = ensure_articles_index(client, settings)
    ensure_indices(client, settings, EMBEDDING_DIM)
    indices = [alias, dedupe_index(settings), stories_index(settings)]
    client.indices.put_settings(index=",".join(indices), settings={"index": {"refresh_interval": "-1"}})
    stories: dict[str, Story] = {}
    if start:
        first_story = start // STORY_SIZE
        for hit in client.search(
            index=stories_index(settings), query={"ids": {"values": [f"story-{first_story}"]}}
        )["hits"]["hits"]:
            stories[hit["_id"]] = doc_to_story(hit["_source"])

    def actions() -> Any:
        for n in range(start, end):
            published = now - timedelta(days=(end - n) / PER_DAY)
            item = article(n, n // STORY_SIZE, published)
            item.story_id = f"story-{n // STORY_SIZE}"
            record = fingerprint(article_input(item))
            record.story_id = item.story_id
            record.match = "new" if n % STORY_SIZE == 0 else "near"
            story = merge_story(stories.get(item.story_id), record)
            stories[item.story_id] = story
            yield {"_index": alias, "_id": item.id, "_source": _article_doc(item, story)}
            yield {"_index": dedupe_index(settings), "_id": item.id, "_source": record_to_doc(record)}
            if n % STORY_SIZE == STORY_SIZE - 1 or n == end - 1:
                yield {
                    "_index": stories_index(settings),
                    "_id": item.story_id,
                    "_source": story_to_doc(story),
                }
            if n % STORY_SIZE == STORY_SIZE - 1:
                del stories[item.story_id]  # complete: never touched again by the preload

    bulk(client.options(request_timeout=300), actions(), chunk_size=500)
    client.indices.put_settings(index=",".join(indices), settings={"index": {"refresh_interval": "1s"}})
    client.indices.refresh(index=",".join(indices))
    return time.perf_counter() - began


def _article_doc(item: Article, story: Story) -> dict[str, Any]:
    from index.indexer import to_document

    doc = to_document(item, now=item.published)
    doc.update(
        story_size=story.size,
        story_sources=story.outlets,
        story_langs=story.languages,
        story_first_seen_at=story.first_published.isoformat() if story.first_published else None,
    )
    return doc


def new_batch(size: int, have: int, count: int, now: datetime, salt: int = 0) -> list[Article]:
    """Half join one of the most recent stories, half start new ones (ids never used before)."""
    rng = random.Random(size * 10 + salt)
    recent = max(1, min(have // STORY_SIZE, 300))
    out = []
    for k in range(count):
        n = 10_000_000 * (1 + len(str(size))) + 1_000_000 * salt + k
        fresh = 5_000_000 + 1_000_000 * salt + size + k
        story = (have // STORY_SIZE - 1 - rng.randrange(recent)) if k % 2 == 0 else fresh
        out.append(article(n, story, now - timedelta(minutes=rng.randrange(60))))
        out[-1].story_id = None
    return out


def es_cpu_ms(client: Elasticsearch) -> float:
    """CPU time of the Elasticsearch node(s) so far (shared node: others' work is included)."""
    stats = client.nodes.stats(metric="process")
    return float(sum(node["process"]["cpu"]["total_in_millis"] for node in stats["nodes"].values()))


def measure_batch(client: Elasticsearch, settings: Settings, batch: list[Article]) -> dict[str, float]:
    from alerts.evaluate import evaluate_rule
    from alerts.store import load_rules
    from enrich.stages import StageContext, stage
    from index.indexer import index_articles
    from index.stories import story_state

    rules = [rule for rule in load_rules(None, settings).rules if rule.enabled]
    since = datetime.now(UTC)
    es0, cpu0 = es_cpu_ms(client), time.process_time()
    t0 = time.perf_counter()
    stage("dedupe").run(batch, StageContext(settings, stories=story_state(client, settings)))
    t1 = time.perf_counter()
    report = index_articles(client, settings, batch)
    if report.failed:
        raise RuntimeError(f"indexing failed: {report.failed[:3]}")
    client.indices.refresh(index=articles_alias(settings))
    t2 = time.perf_counter()
    matched = 0
    for rule in rules:
        matched += evaluate_rule(client, settings, rule, datetime.now(UTC), since=since).matched
    t3 = time.perf_counter()
    joined = sum(1 for a in batch if a.story_id and a.story_id.startswith("story-"))
    return {
        "assign_s": t1 - t0,
        "index_s": t2 - t1,
        "alerts_s": t3 - t2,
        "total_s": t3 - t0,
        "cpu_s": time.process_time() - cpu0,
        "es_cpu_s": (es_cpu_ms(client) - es0) / 1000,
        "joined_existing": joined,
        "matched_stories": matched,
        "rules": len(rules),
    }


def measure(sizes: list[int], batch: int) -> list[dict[str, Any]]:
    settings = get_settings().model_copy(update={"index_prefix": bench_prefix("scale")})
    from index.client import get_client

    client = get_client(settings, timeout=300)
    now = datetime.now(UTC)
    have = 0
    results = []
    try:
        for size in sizes:
            if size > have:
                load_s = preload(client, settings, have, size, now)
                print(f"  preloaded {have:,} -> {size:,} articles in {load_s:.0f} s", file=sys.stderr)
                have = size
            # Untimed warm-up (first queries of a fresh index compile and load structures); it stays.
            warm = new_batch(size, have, 20, datetime.now(UTC), salt=1)
            measure_batch(client, settings, warm)
            have += len(warm)
            articles = new_batch(size, have, batch, datetime.now(UTC))
            got = measure_batch(client, settings, articles)
            per_1k = 1000 / batch
            row = {
                "size": size,
                "batch": batch,
                **{k: v * per_1k if k.endswith("_s") else v for k, v in got.items()},
            }
            results.append(row)
            print(f"  @ {size:,}: {row}", file=sys.stderr)
            have += batch  # the batch stays in the index
    finally:
        drop_prefix(client, settings.index_prefix)
    return results


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 1k and 10k, batches of 200; full: 1k, 10k, 100k, batches of 1k)."""
    sizes, batch = ([1_000, 10_000], 200) if quick else ([1_000, 10_000, 100_000], 1000)
    got = measure(sizes, batch)
    base = got[0]
    rows = []
    for r in got:
        sample = (
            f"batch of {batch} new articles scaled to 1k ({r['joined_existing']} joined existing stories), "
            f"{r['rules']} rules"
        )
        label = f"@ {base['size']:,}"
        rows.append(
            Row(
                "scaling",
                f"cost per 1k articles @ {r['size']:,} indexed",
                r["total_s"],
                "s",
                base["total_s"],
                label,
                sample,
            )
        )
        for part, name in (
            ("assign_s", "story assignment"),
            ("index_s", "indexing"),
            ("alerts_s", "alert evaluation"),
        ):
            rows.append(Row("scaling", f"  {name} @ {r['size']:,}", r[part], "s", base[part], label))
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
                "shared node: includes other clients' work",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    got = measure([int(s) for s in args.sizes.split(",")], args.batch)
    print(
        f"{'indexed':>9} {'total s':>8} {'assign s':>9} {'index s':>8} {'alerts s':>9} {'CPU s':>6} "
        f"{'ES CPU s':>9}  (per 1,000 new articles)"
    )
    for r in got:
        print(
            f"{r['size']:>9,} {r['total_s']:8.1f} {r['assign_s']:9.1f} {r['index_s']:8.1f} "
            f"{r['alerts_s']:9.1f} {r['cpu_s']:6.1f} {r['es_cpu_s']:9.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
