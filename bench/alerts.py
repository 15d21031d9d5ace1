"""Alert benchmark: indexing-to-delivery latency and evaluation cost per rule as the index grows.

Run ``python -m bench.alerts [--sizes 10000,30000,100000] [--stream 200] [--batch 10]`` against the
local node (``newsradar es start``). Everything goes into a throw-away index prefix
(``<prefix>-bench-alerts-<random>``), deleted at the end (indices and templates).

1. Latency: a stream of articles is indexed in batches; after each batch one alerting run
   (evaluate + deliver) goes to a real SMTP server (aiosmtpd) and a real webhook server on
   127.0.0.1. Per alert: receipt time at the server minus the moment the story's first article was
   handed to the bulk API. Baseline in the same run: the bulk + refresh time alone (the floor any
   alerting on this index pays). In production the scheduling interval of the run adds to this.
2. Cost per rule: synthetic articles (no embeddings) are bulk-indexed up to each size; then 200 new
   articles arrive and each shipped example rule is evaluated (dry run) over that window. Baseline:
   a bare ``count`` of the rule's query over the whole index, same run.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import random
import socket
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk, parallel_bulk

from bench.report import Row, drop_prefix

WORDS_EN = [
    *("model", "release", "launch", "ban", "chip", "export", "control"),
    *("regulator", "court", "app", "data", "cloud", "open", "source"),
]
WORDS_DE = [
    *("Modell", "Verbot", "Chip", "Export", "Regulierung"),
    *("Gericht", "Daten", "Behörde", "Halbleiter", "Start"),
]
WORDS_ZH = ["模型", "发布", "禁令", "芯片", "出口", "管制", "监管", "数据", "开源", "半导体"]
ENTITIES = ["Nvidia", "Alibaba", "DeepSeek", "Baidu", "OpenAI", "Germany", "EU", "China", "US", "Huawei"]
EVENTS = ["release", "ban", "restriction", "regulation", "other"]
SOURCES = [f"outlet{n}" for n in range(40)]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _synthetic(
    rng: random.Random, n: int, story: str | None = None, seen: datetime | None = None
) -> dict[str, Any]:
    lang = rng.choice(["de", "en", "zh"])
    words = {"de": WORDS_DE, "en": WORDS_EN, "zh": WORDS_ZH}[lang]
    entities = rng.sample(ENTITIES, 2)
    title = " ".join([entities[0], *rng.sample(words, 4)])
    now = seen or datetime.now(UTC)
    event = rng.choice(EVENTS)
    return {
        "id": f"a{n}",
        "url": f"https://example.invalid/{n}",
        "canonical_url": f"https://example.invalid/{n}",
        "source": rng.choice(SOURCES),
        "country": rng.choice(["DE", "US", "CN", "GB"]),
        "lang": lang,
        "title": title,
        "title_en": " ".join([entities[0], *rng.sample(WORDS_EN, 4)]) if lang != "en" else None,
        "lead": " ".join(rng.choices(words, k=20)),
        "text": " ".join(rng.choices(words, k=120)),
        "event_types": [event],
        "event_type": event,
        "ai_related": True,  # classified AI news about the labs named: rules skip other news by default
        "entities": entities,
        "story_id": story or f"s{n // 3}",
        "first_seen_at": now.isoformat(),
        "indexed_at": now.isoformat(),
        "published_at": now.isoformat(),
        "paywall": False,
    }


class _Sink:
    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((time.time(), str(mail["Subject"])))
        return "250 OK"


def _webhook() -> tuple[ThreadingHTTPServer, list[tuple[float, str]]]:
    received: list[tuple[float, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            received.append((time.time(), body.get("text", "")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def bench_latency(client: Elasticsearch, base: Any, stream: int, batch: int) -> dict[str, Any]:
    import os

    from alerts.rules import Rule
    from alerts.runner import run_once
    from alerts.store import RuleSet
    from index.mapping import ensure_articles_index

    sink = _Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    hook, hook_received = _webhook()
    os.environ["NEWSRADAR_SLACK_WEBHOOK_BENCH"] = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    settings = base.model_copy(update={"smtp_port": smtp_port, "smtp_from": "bench@newsradar.test"})
    alias = ensure_articles_index(client, settings)
    rule = Rule.model_validate(
        {
            "name": "bench",
            "owner": "bench",
            "query": "benchstory",
            "channels": {"email": ["a@example.org"], "slack": ["bench"]},
        }
    )
    rules = RuleSet(rules=[rule])
    rng = random.Random(7)
    started: dict[str, float] = {}
    floor: list[float] = []
    run_once(client, settings, rules=rules)  # first run: creates state indices, sets the watermark
    n = 0
    try:
        while n < stream:
            docs = []
            for _ in range(batch):
                story = f"st{n // 2}"  # two articles per story: alerts are per story
                doc = _synthetic(rng, 10_000_000 + n, story)
                doc["title"] = f"benchstory {story}x {doc['title']}"
                doc["title_en"] = f"benchstory {story}x"
                docs.append(doc)
                n += 1
            t0 = time.time()
            for doc in docs:
                started.setdefault(doc["story_id"], t0)
            bulk(client, [{"_index": alias, "_id": d["id"], "_source": d} for d in docs], refresh=True)
            floor.append(time.time() - t0)
            run_once(client, settings, rules=rules)
        time.sleep(0.5)
    finally:
        controller.stop()
        hook.shutdown()

    def latencies(received: list[tuple[float, str]]) -> list[float]:
        out = []
        for at, text in received:
            for word in text.split():
                if word.startswith("st") and word.endswith("x") and word[:-1] in started:
                    out.append(at - started[word[:-1]])
                    break
        return out

    mail, slack = latencies(sink.received), latencies(hook_received)
    return {
        "stories": len(started),
        "emails": len(mail),
        "webhook_posts": len(slack),
        "email_p50_s": statistics.median(mail),
        "email_p95_s": _pct(mail, 0.95),
        "webhook_p50_s": statistics.median(slack),
        "webhook_p95_s": _pct(slack, 0.95),
        "baseline_bulk_refresh_p50_s": statistics.median(floor),
    }


def bench_cost(client: Elasticsearch, settings: Any, sizes: list[int], window: int) -> list[dict[str, Any]]:
    from alerts.evaluate import evaluate_rule, rule_query
    from alerts.store import load_rules
    from index.mapping import ensure_articles_index

    rules = load_rules(None, settings).rules
    alias = ensure_articles_index(client, settings)
    index = client.indices.get_alias(name=alias)
    concrete = next(iter(index))
    rng = random.Random(11)
    old = datetime.now(UTC) - timedelta(days=3)
    have = 0
    rows: list[dict[str, Any]] = []
    for size in sizes:
        client.indices.put_settings(index=concrete, settings={"refresh_interval": "-1"})
        actions = (
            {"_index": alias, "_id": f"a{n}", "_source": _synthetic(rng, n, seen=old)}
            for n in range(have, size)
        )
        t0 = time.perf_counter()
        for ok, item in parallel_bulk(client, actions, thread_count=2, chunk_size=2000):
            if not ok:
                raise RuntimeError(f"bulk failed: {item}")
        load_s = time.perf_counter() - t0
        client.indices.put_settings(index=concrete, settings={"refresh_interval": "1s"})
        client.indices.refresh(index=alias)
        have = size
        since = datetime.now(UTC)
        fresh = [_synthetic(rng, 50_000_000 + size + k) for k in range(window)]
        bulk(client, [{"_index": alias, "_id": d["id"], "_source": d} for d in fresh], refresh=True)
        for rule in rules:
            evaluate_rule(client, settings, rule, datetime.now(UTC), since=since, dry_run=True)  # warm
            t0 = time.perf_counter()
            result = evaluate_rule(client, settings, rule, datetime.now(UTC), since=since, dry_run=True)
            eval_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            client.count(index=alias, query=rule_query(rule))
            count_s = time.perf_counter() - t0
            rows.append(
                {
                    "size": size + window,
                    "rule": rule.name,
                    "eval_ms": eval_s * 1000,
                    "baseline_count_ms": count_s * 1000,
                    "ratio": eval_s / count_s if count_s else float("nan"),
                    "matched_stories": result.matched,
                    "load_docs_per_s": (size - (rows[-1]["size"] - window if rows else 0)) / load_s
                    if load_s
                    else 0,
                }
            )
        # the window articles stay; the next size starts after them
    return rows


def measure(sizes: list[int], stream: int, batch: int, window: int) -> dict[str, Any]:
    """Both parts under a throw-away prefix (dropped at the end); prints the tables."""
    from index.client import get_client
    from newsradar.settings import get_settings

    base = get_settings()
    client = get_client(base, timeout=120)
    run_id = uuid.uuid4().hex[:6]
    prefix = f"{base.index_prefix}-bench-alerts-{run_id}"
    latency_settings = base.model_copy(update={"index_prefix": f"{prefix}-lat"})
    cost_settings = base.model_copy(update={"index_prefix": f"{prefix}-cost"})
    try:
        latency = bench_latency(client, latency_settings, stream, batch)
        print(f"latency over {latency['stories']} stories ({stream} articles, batches of {batch}):")
        floor = latency["baseline_bulk_refresh_p50_s"]
        for name in ("email", "webhook"):
            p50, p95 = latency[f"{name}_p50_s"], latency[f"{name}_p95_s"]
            print(
                f"  {name:8} p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  "
                f"({p50 / floor:.1f}x baseline)"
            )
        print(
            f"  baseline bulk+refresh p50 {floor * 1000:.1f} ms; messages: {latency['emails']} emails, "
            f"{latency['webhook_posts']} webhook posts"
        )
        rows = bench_cost(client, cost_settings, sizes, window)
        print(f"evaluation cost per rule (window of {window} new articles, dry run):")
        print(f"  {'docs':>8} {'rule':24} {'eval ms':>9} {'count ms':>9} {'ratio':>6} {'stories':>8}")
        for row in rows:
            print(
                f"  {row['size']:>8} {row['rule']:24} {row['eval_ms']:9.1f} {row['baseline_count_ms']:9.1f} "
                f"{row['ratio']:6.1f} {row['matched_stories']:>8}"
            )
        return {"latency": latency, "cost": rows}
    finally:
        for name in (f"{prefix}-lat", f"{prefix}-cost"):
            drop_prefix(client, name)


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 40 streamed articles, 10k documents only)."""
    sizes, stream = ([10_000], 40) if quick else ([10_000, 30_000, 100_000], 200)
    window = 200
    got = measure(sizes, stream, 10, window)
    lat = got["latency"]
    floor = lat["baseline_bulk_refresh_p50_s"] * 1000
    sample = f"{lat['stories']} stories, {stream} articles in batches of 10"
    rows = [
        Row(
            "alerts",
            f"index -> {label} {q}",
            lat[f"{key}_{q}_s"] * 1000,
            "ms",
            floor,
            "bulk + refresh p50",
            sample,
        )
        for key, label in (("email", "SMTP"), ("webhook", "webhook"))
        for q in ("p50", "p95")
    ]
    for size in sorted({row["size"] for row in got["cost"]}):
        mine = [row for row in got["cost"] if row["size"] == size]
        rows.append(
            Row(
                "alerts",
                f"rule evaluation @ {size:,} docs (mean per rule)",
                statistics.mean(r["eval_ms"] for r in mine),
                "ms",
                statistics.mean(r["baseline_count_ms"] for r in mine),
                "bare count of the rule query",
                f"{len(mine)} shipped rules, window {window} new articles, dry run",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--stream", type=int, default=200)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    got = measure([int(s) for s in args.sizes.split(",")], args.stream, args.batch, args.window)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(got, out, indent=2)


if __name__ == "__main__":
    main()
