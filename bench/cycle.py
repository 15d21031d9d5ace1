"""Cost of one pipeline cycle: CPU of crawl → process → alerts per 100 new articles, against the raw
embedding of the same texts, and the cold start of an embedding task.

Run ``python -m bench.cycle [--articles N] [--cycles N]``.

The real pipeline runs — the three DAGs with ``dag.test()`` (their tasks in this process, Scrapy as a
subprocess per host) against the real Elasticsearch node, a replay server holding a copy of the
sample site and a real SMTP server (aiosmtpd) on 127.0.0.1, under a bench-only index prefix dropped
at the end. Measured:

* CPU time of a whole cycle per 100 articles (cycles that find about 100 new articles each): this
  process and its children (`getrusage` SELF + CHILDREN, Scrapy included), Elasticsearch's CPU
  from its node stats (shared node: other clients' work lands there too); baseline: the raw
  embedding of the same articles' texts (`Embedder.passages`), same process, right after each
  cycle. Three measured cycles by default, summed: the embedding's own CPU varies by ±8 % from one
  run to the next on two shared cores, and one cycle against one baseline doubled that in the ratio.
  The harness's own heap (the DagBag, the warm-up's Airflow state: about four times what a task
  process holds) is frozen out of the garbage collector before the measured cycles, so a full
  collection of it is not charged to the pipeline; the cycles' own objects are collected as usual.
  Each cycle and each baseline starts on an idle node (`wait_for_idle_node`). A second figure
  leaves out what ``dag.test()`` spends re-parsing the DAG folder and re-writing every DAG to the
  metadata database before each run (`HarnessCpu`, about 0.3 s per cycle): a test-harness step the
  scheduler does not take per run;
* cold start of an embedding task: a fresh interpreter importing the enrichment code and loading
  the model — what the `enrich` task pays when Airflow runs it in its own process; baseline: a bare
  interpreter start.

Freshness on the real scheduler is `bench.freshness`.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import gc
import html
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bench.report import REPO, Row, bench_prefix, drop_prefix, es_cpu_ms

RULE = """
name: freshness-probe
owner: bench
query: freshness
channels:
  email: [bench@newsradar.test]
mode: immediate
"""
WORDS = [
    *("agency", "court", "minister", "startup", "chip", "model", "cloud", "data", "privacy", "license"),
    *("export", "market", "investor", "lab", "robot", "vision", "speech", "search", "browser", "phone"),
    *("factory", "satellite", "network", "battery", "contract", "budget", "hearing", "audit", "council"),
    *("parliament", "treaty", "tariff", "supplier", "quarter", "revenue", "forecast", "launch", "update"),
    *("review", "warning", "fine", "appeal", "inquiry", "standard", "benchmark", "dataset", "training"),
    *("inference", "server", "camera"),
]


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = [str(mail["Subject"])]
        for part in mail.walk():
            if part.get_content_type() == "text/plain":
                parts.append(part.get_content())
        self.received.append((time.time(), "\n".join(parts)))
        return "250 OK"


# ------------------------------------------------------------------------------------------- the site


def add_to_feed(site: Path, outlet: str, path: str, title: str) -> None:
    """Put one item at the top of an outlet's RSS or Atom feed (the crawler sees a changed feed)."""
    feed = site / outlet / "feed.xml"
    text = feed.read_text(encoding="utf-8")
    url = "{{BASE_URL}}" + path
    now = datetime.now(UTC)
    title = html.escape(title)
    if "<rss" in text:
        item = (
            f'<item><title>{title}</title><link>{url}</link><guid isPermaLink="true">{url}</guid>'
            f"<pubDate>{format_datetime(now)}</pubDate></item>\n    "
        )
        marker = "<item>" if "<item>" in text else "</channel>"
    else:
        item = (
            f'<entry><title>{title}</title><link rel="alternate" type="text/html" href="{url}"/>'
            f"<id>{url}</id><updated>{now.isoformat()}</updated></entry>\n  "
        )
        marker = "<entry>" if "<entry>" in text else "</feed>"
    at = text.index(marker)
    feed.write_text(text[:at] + item + text[at:], encoding="utf-8")


def add_copies(site: Path, count: int, tag: str) -> int:
    """`count` re-published sample articles: new URL, one added paragraph (near-duplicates)."""
    from stack.replay import SAMPLE_SITE

    manifest = [
        m
        for m in json.loads((SAMPLE_SITE / "MANIFEST.json").read_text("utf-8"))
        if not m["robots_disallowed"] and m["in_feed"]
    ]
    rng = random.Random(tag)
    for k in range(count):
        item = manifest[k % len(manifest)]
        source = SAMPLE_SITE / item["path"].lstrip("/")
        name = source.name
        new_path = item["path"].replace(name, f"{tag}-{k}-{name}")
        extra = " ".join(rng.choices(WORDS, k=40))
        body = source.read_bytes().replace(item["path"].encode(), new_path.encode())
        paragraph = f"<p>Update {tag} {k}: {extra}.</p>".encode()
        for closing in (b"</article>", b"</main>", b"</body>"):
            if closing in body:
                body = body.replace(closing, paragraph + closing, 1)
                break
        target = site / new_path.lstrip("/")
        target.write_bytes(body)
        add_to_feed(site, item["outlet"], new_path, item["title"])
    return count


# ------------------------------------------------------------------------------------------- the cycle


class HarnessCpu:
    """CPU that ``dag.test()`` spends on itself: before each run it re-parses the DAG folder and writes
    every DAG to the metadata database again (a test-harness step; the scheduler runs a DAG from its
    serialized copy, and the DAG processor re-parses files on its own interval, not per run). Counted
    by wrapping the two calls, so the cycle's CPU can be read with and without it."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def install(self) -> None:
        from airflow.dag_processing import dagbag

        def timed(call: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.process_time()
                try:
                    return call(*args, **kwargs)
                finally:
                    self.seconds += time.process_time() - started

            return wrapper

        module: Any = dagbag
        module.sync_bag_to_db = timed(module.sync_bag_to_db)
        module.BundleDagBag.__init__ = timed(module.BundleDagBag.__init__)


HARNESS = HarnessCpu()


def wait_for_idle_node(client: Any, quiet: float = 0.1, longest: float = 20.0) -> None:
    """Wait until Elasticsearch is idle (under ``quiet`` of one core over half a second). After a batch
    the node builds its vector graphs and merges segments for seconds; an embedding measured meanwhile
    shares the two cores with it and its CPU time varied by a third from one measurement to the next."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        before, started = es_cpu_ms(client), time.monotonic()
        time.sleep(0.5)
        if (es_cpu_ms(client) - before) / 1000 / (time.monotonic() - started) < quiet:
            return


def cycle(dags: dict[str, Any], settings: Any, client: Any) -> dict[str, Any]:
    """crawl → process → alerts with dag.test(); wall-clock marks and CPU around the whole cycle."""
    from newsradar.batches import raw_batches

    harness0 = HARNESS.seconds
    cpu0, es0 = cpu_seconds(), es_cpu_ms(client)
    t0 = time.time()
    crawl = dags["newsradar_crawl"].test(run_conf={"force": True})
    t1, cpu1 = time.time(), cpu_seconds()
    if not str(crawl.state).endswith("success"):
        raise RuntimeError(f"crawl run ended {crawl.state}")
    raw = raw_batches(settings, crawl.run_id)
    if not raw:
        raise RuntimeError("the crawl found nothing new")
    process = dags["newsradar_process"].test(run_conf={"raw": raw})
    t2, cpu2 = time.time(), cpu_seconds()
    if not str(process.state).endswith("success"):
        raise RuntimeError(f"process run ended {process.state}")
    alerts = dags["newsradar_alerts"].test()
    t3, cpu3 = time.time(), cpu_seconds()
    if not str(alerts.state).endswith("success"):
        raise RuntimeError(f"alerts run ended {alerts.state}")
    articles = sum(len(Path(path).read_text(encoding="utf-8").splitlines()) for path in raw)
    return {
        "t0": t0,
        "t1": t1,
        "t2": t2,
        "t3": t3,
        "articles": articles,
        "cpu_s": cpu3 - cpu0,
        "harness_cpu_s": HARNESS.seconds - harness0,
        "crawl_cpu_s": cpu1 - cpu0,
        "process_cpu_s": cpu2 - cpu1,
        "alerts_cpu_s": cpu3 - cpu2,
        "es_cpu_s": (es_cpu_ms(client) - es0) / 1000,
        "process_run": process.run_id,
    }


def raw_embedding_cpu(settings: Any, run_id: str) -> tuple[float, int]:
    """CPU seconds of the raw model over exactly the texts the embed stage embedded in that run."""
    from dagkit import enriched_path
    from enrich.embed import embedder_for, passage_text
    from newsradar.batches import read_articles

    articles = list(read_articles(enriched_path(settings, run_id)))
    texts = [passage_text(a.title, a.lead, a.text) for a in articles]
    embedder = embedder_for(settings)
    cpu0 = cpu_seconds()
    embedder.passages(texts)
    return cpu_seconds() - cpu0, len(texts)


def cold_start() -> tuple[float, float]:
    """CPU of a fresh interpreter that loads the embedding model and embeds one text, and of a bare one."""

    def child_cpu(code: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    model = child_cpu(
        "from enrich.embed import embedder_for; from newsradar.settings import get_settings; "
        "embedder_for(get_settings()).passages(['warm up'])"
    )
    return model, child_cpu("pass")


# ------------------------------------------------------------------------------------------- measure


def measure(copies: int, cycles: int = 3) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="newsradar-bench-cycle-"))
    prefix = bench_prefix("cycle")
    # Airflow reads its configuration when first imported: everything is set before that.
    os.environ.update(
        {
            "AIRFLOW_HOME": str(tmp / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp / 'airflow' / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "HF_HUB_OFFLINE": "1",
        }
    )
    (tmp / "airflow").mkdir()
    from aiosmtpd.controller import Controller

    from index.client import get_client
    from newsradar.settings import get_settings
    from stack.replay import SAMPLE_SITE, ReplayServer

    site = tmp / "site"
    shutil.copytree(SAMPLE_SITE, site)
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "probe.yaml").write_text(RULE)
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    client = None
    try:
        with ReplayServer(site) as server:
            os.environ.update(
                {
                    "NEWSRADAR_INDEX_PREFIX": prefix,
                    "NEWSRADAR_STATE_DIR": str(tmp / "state"),
                    "NEWSRADAR_CRAWL_SOURCES": "sample",
                    "NEWSRADAR_SAMPLE_BASE_URL": server.base_url,
                    "NEWSRADAR_RULES_DIR": str(rules),
                    "NEWSRADAR_SMTP_HOST": "127.0.0.1",
                    "NEWSRADAR_SMTP_PORT": str(smtp_port),
                    "NEWSRADAR_OPERATOR_EMAIL": "",
                }
            )
            get_settings.cache_clear()
            settings = get_settings()
            client = get_client(settings)
            from airflow.dag_processing.dagbag import DagBag
            from airflow.utils import db

            db.resetdb()
            dags = dict(DagBag(dag_folder=str(REPO / "dags")).dags)
            HARNESS.install()

            print("warm-up cycle: the sample site", file=sys.stderr, flush=True)
            warm = cycle(dags, settings, client)
            gc.collect()
            gc.freeze()

            costs: list[dict[str, Any]] = []
            for round_ in range(1, cycles + 1):
                note = f"cost cycle {round_}/{cycles}: {copies} re-published articles"
                print(note, file=sys.stderr, flush=True)
                add_copies(site, copies, f"copy{round_}")
                wait_for_idle_node(client)
                cost = cycle(dags, settings, client)
                wait_for_idle_node(client)
                cost["raw_cpu_s"], cost["raw_n"] = raw_embedding_cpu(settings, cost["process_run"])
                costs.append(cost)

    finally:
        gc.unfreeze()
        smtp.stop()
        if client is not None:
            drop_prefix(client, prefix)
        shutil.rmtree(tmp, ignore_errors=True)

    model_cpu, bare_cpu = cold_start()

    def total(key: str) -> float:
        return float(sum(c[key] for c in costs))

    def median_of(first: str, last: str) -> float:
        return float(sorted(c[last] - c[first] for c in costs)[len(costs) // 2])

    return {
        "warmup_articles": warm["articles"],
        "cycles": len(costs),
        "cost_articles": int(total("articles")),
        "cost_cpu_s": total("cpu_s"),
        "harness_cpu_s": total("harness_cpu_s"),
        "cost_es_cpu_s": total("es_cpu_s"),
        "cost_wall_s": median_of("t0", "t3"),
        "crawl_s": median_of("t0", "t1"),
        "process_s": median_of("t1", "t2"),
        "alerts_s": median_of("t2", "t3"),
        "raw_embed_cpu_s": total("raw_cpu_s"),
        "raw_embed_texts": int(total("raw_n")),
        "crawl_cpu_s": total("crawl_cpu_s"),
        "process_cpu_s": total("process_cpu_s"),
        "alerts_cpu_s": total("alerts_cpu_s"),
        "per_cycle_cpu_s": [
            {
                k: round(c[k], 2)
                for k in ("crawl_cpu_s", "process_cpu_s", "alerts_cpu_s", "harness_cpu_s", "raw_cpu_s")
            }
            for c in costs
        ],
        "cycle_ratios": [(c["cpu_s"] / c["articles"]) / (c["raw_cpu_s"] / c["raw_n"]) for c in costs],
        "cold_embed_task_cpu_s": model_cpu,
        "bare_python_cpu_s": bare_cpu,
    }


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 60 articles in the cost cycle; full: 100)."""
    r = measure(60 if quick else 100, 1 if quick else 3)
    per100 = 100 / r["cost_articles"]
    raw100 = 100 / r["raw_embed_texts"]
    each = ", ".join(f"{ratio:.2f}x" for ratio in r["cycle_ratios"])
    sample = f"{r['cycles']} cycles, {r['cost_articles']} new articles in all, scaled to 100"
    wall = (
        f"cycle wall time (median) {r['cost_wall_s']:.0f} s: crawl {r['crawl_s']:.0f}, "
        f"process {r['process_s']:.0f}, alerts {r['alerts_s']:.0f}; each cycle {each}"
    )
    return [
        Row(
            "cycle",
            "cycle CPU per 100 articles (process + children)",
            r["cost_cpu_s"] * per100,
            "CPU s",
            r["raw_embed_cpu_s"] * raw100,
            "raw embedding of the same texts",
            sample,
            wall,
        ),
        Row(
            "cycle",
            "cycle CPU per 100 articles, the pipeline's (without dag.test's DAG re-sync)",
            (r["cost_cpu_s"] - r["harness_cpu_s"]) * per100,
            "CPU s",
            r["raw_embed_cpu_s"] * raw100,
            "raw embedding of the same texts",
            sample,
            f"dag.test re-parsed and re-wrote the DAGs for {r['harness_cpu_s'] * per100:.2f} CPU s per 100",
        ),
        Row(
            "cycle",
            "cycle CPU per 100 articles, Elasticsearch",
            r["cost_es_cpu_s"] * per100,
            "CPU s",
            r["raw_embed_cpu_s"] * raw100,
            "raw embedding of the same texts",
            sample,
            "shared node: includes other clients' work",
        ),
        Row(
            "cycle",
            "cold start of an embedding task (imports + model)",
            r["cold_embed_task_cpu_s"],
            "CPU s",
            r["bare_python_cpu_s"],
            "bare interpreter",
            "paid per task process under Airflow",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100, help="new articles in the cost cycle")
    parser.add_argument("--cycles", type=int, default=3, help="measured cycles, summed (default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.articles < 1 or args.cycles < 1:
        parser.error("--articles and --cycles must be at least 1")
    r = measure(args.articles, args.cycles)
    print(json.dumps(r, indent=1))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
