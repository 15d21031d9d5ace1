"""Cross-lingual search quality on real headlines: `python -m bench.search_dev`.

The 824 real de/en/zh headlines of `../shared/data/headlines/train.jsonl` (read there at run time,
never copied) are ingested with the full enrichment pipeline — language, translation, embeddings,
classification, entities, stories — into a bench-only index. Then every analyst query of
`bench/data/search_dev_queries.jsonl` (46 per language: 34 `dev`, 12 `heldout`; written and judged for
this project, ids and grades only) runs in each retrieval mode, and nDCG@10 is reported per query
language and split.

Judgments are graded (2 = same story or event, 1 = same topic, 0 = not judged relevant); gain is the
grade (linear), the ideal ranking is the judged grades sorted, unjudged headlines count 0. Every
article is ranked (no collapse by story): a judged headline of the same story must not hide another.

The enriched documents are cached under `<cache>/bench/` keyed by the data file and the code of
`enrich/` (catalogs included), so a second run re-indexes in seconds instead of re-enriching.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from bench.report import REPO, SHARED_DATA, drop_prefix
from enrich.embed import Embedder, get_embedder
from index.ingest import ingest_file
from index.mapping import articles_alias, ensure_articles_index
from index.search import SearchRequest, search_articles
from newsradar.settings import Settings

HEADLINES = SHARED_DATA / "headlines" / "train.jsonl"
QUERIES = REPO / "bench" / "data" / "search_dev_queries.jsonl"
LANGS = ("de", "en", "zh")
MODES = ("hybrid", "bm25", "knn")


def load_queries(path: Path = QUERIES) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def headline_records(path: Path = HEADLINES) -> list[dict[str, Any]]:
    """Ingest records: the headline id is the article id, so judgments name documents directly."""
    out = []
    for line in path.read_text("utf-8").splitlines():
        item = json.loads(line)
        out.append(
            {
                "id": item["id"],
                "url": f"http://headlines.test/{item['id']}",
                "source": (item.get("source_repo") or "stored-page").split("/")[-1][:60],
                "title": item["title"],
                "text": item.get("snippet") or "",
                "published": item.get("date"),
                "lang": item["lang"],
            }
        )
    return out


def _code_key() -> str:
    digest = hashlib.sha256(HEADLINES.read_bytes())
    for path in sorted((REPO / "enrich").rglob("*")):
        if path.suffix in (".py", ".yaml", ".yml") and path.is_file():
            digest.update(path.relative_to(REPO).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_index(client: Elasticsearch, settings: Settings, echo: Callable[[str], None]) -> int:
    """The enriched headlines in the settings' articles index; enrichment is cached per code version."""
    cache = settings.cache_dir / "bench" / f"headlines-enriched-{_code_key()}.jsonl"
    alias = articles_alias(settings)
    if cache.is_file():
        docs = [json.loads(line) for line in cache.read_text("utf-8").splitlines()]
        target = ensure_articles_index(client, settings)
        bulk(client, ({"_index": target, "_id": d["id"], "_source": d} for d in docs), chunk_size=200)
        client.indices.refresh(index=alias)
        echo(f"headlines: {len(docs)} enriched documents from the cache ({cache.name})")
        return len(docs)
    records = headline_records()
    with tempfile.TemporaryDirectory(prefix="bench-headlines-") as tmp:
        source = Path(tmp) / "headlines.jsonl"
        source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
        start = time.perf_counter()
        report = ingest_file(client, settings, source, enrich=True)
        echo(f"headlines: enriched and indexed {report.indexed} in {time.perf_counter() - start:.0f} s")
    client.indices.refresh(index=alias)
    docs = []
    after = None
    while True:
        page = client.search(
            index=alias, size=500, sort=[{"id": "asc"}], search_after=after, source_exclude_vectors=False
        )["hits"]["hits"]
        docs.extend(h["_source"] for h in page)
        if len(page) < 500:
            break
        after = page[-1]["sort"]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), "utf-8")
    return len(docs)


def ndcg_at(ranking: Sequence[str], grades: dict[str, int], k: int = 10) -> float:
    dcg = sum(grades.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / best if best else 0.0


def run_queries(
    client: Elasticsearch,
    settings: Settings,
    queries: list[dict[str, Any]],
    embedder: Embedder,
    modes: Sequence[str] = MODES,
    **options: Any,
) -> dict[str, dict[str, float]]:
    """nDCG@10 per query id and mode."""
    out: dict[str, dict[str, float]] = {}
    for mode in modes:
        scores: dict[str, float] = {}
        for q in queries:
            request = SearchRequest(query=q["query"], mode=mode, collapse=False, limit=10, highlight=False)
            result = search_articles(client, settings, request, embedder, **options)
            ranking = [h.id for h in result.hits] + [h.id for h in result.less_related]
            scores[q["qid"]] = ndcg_at(ranking, q["judgments"])
        out[mode] = scores
    return out


def summarise(
    queries: list[dict[str, Any]], scores: dict[str, dict[str, float]]
) -> list[tuple[str, str, str, int, float]]:
    """(split, language, mode, queries, mean nDCG@10), with 'all' rows for each split."""
    rows = []
    for split in ("dev", "heldout"):
        for lang in (*LANGS, "all"):
            chosen = [q for q in queries if q["split"] == split and (lang == "all" or q["lang"] == lang)]
            if not chosen:
                continue
            for mode, per_query in scores.items():
                mean = statistics.mean(per_query[q["qid"]] for q in chosen)
                rows.append((split, lang, mode, len(chosen), mean))
    return rows


def print_table(rows: list[tuple[str, str, str, int, float]]) -> None:
    modes = list(dict.fromkeys(r[2] for r in rows))
    print("\nCross-lingual nDCG@10 on real headlines (824 de/en/zh), by query language")
    print(" | ".join(["split", "query lang", "queries", *modes, "hybrid / best single"]))
    print(" | ".join("---" for _ in range(4 + len(modes))))
    cells: dict[tuple[str, str], dict[str, float]] = {}
    counts: dict[tuple[str, str], int] = {}
    for split, lang, mode, n, mean in rows:
        cells.setdefault((split, lang), {})[mode] = mean
        counts[(split, lang)] = n
    for key, values in cells.items():
        singles = [values[m] for m in ("bm25", "knn") if m in values]
        ratio = f"{values['hybrid'] / max(singles):.2f}" if "hybrid" in values and singles else "-"
        print(" | ".join([*key, str(counts[key]), *(f"{values[m]:.3f}" for m in modes), ratio]))


class CachedEmbedder:
    """Each query embedded once per run, whatever the modes and settings tried."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self._memo: dict[str, Any] = {}

    def passages(self, texts: Sequence[str]) -> Any:
        return self.inner.passages(texts)

    def queries(self, texts: Sequence[str]) -> Any:
        import numpy as np

        missing = [t for t in texts if t not in self._memo]
        if missing:
            for text, vector in zip(missing, self.inner.queries(missing), strict=True):
                self._memo[text] = vector
        return np.vstack([self._memo[t] for t in texts])


def measure(
    client: Elasticsearch, settings: Settings, splits: Sequence[str] = ("dev", "heldout")
) -> list[tuple[str, str, str, int, float]]:
    """Index the headlines under `settings`' prefix, run every query in every mode, drop the index."""
    try:
        build_index(client, settings, lambda m: print(m, file=sys.stderr))
        queries = [q for q in load_queries() if q["split"] in splits]
        scores = run_queries(client, settings, queries, CachedEmbedder(get_embedder()))
        return summarise(queries, scores)
    finally:
        drop_prefix(client, settings.index_prefix)  # the ingest's dedupe and story indices too


def main(argv: Sequence[str] | None = None) -> int:
    from bench.index_search import scoped
    from index.client import get_client
    from newsradar.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", nargs="+", default=["dev", "heldout"], choices=["dev", "heldout"])
    args = parser.parse_args(argv)
    settings = get_settings()
    client = get_client(settings, timeout=300)
    rows = measure(client, scoped(settings, "headlines"), args.split)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
