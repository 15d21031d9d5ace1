"""Freshness on the real scheduler: from an article appearing on a site to its alert in the mailbox
and in Slack. Run ``python -m bench.freshness [--probes N] [--window S]``.

The local stack runs as in production, only on its own ports, state folder and index prefix: the
Airflow scheduler, triggerer, dag-processor and api-server (LocalExecutor) with the DAGs at their
default settings (the crawl DAG every minute, polling due sources; process and alerts on their asset
events), a replay server holding a copy of the sample site, and the mail sink (SMTP server and Slack
webhook endpoint). After a warm-up cycle over the whole site, probe articles are published at random
moments of a window (a new page and a new item at the top of an outlet's feed), each matching its own
alert rule. Measured per probe, wall clock:

* publication → the mail sink's SMTP receipt, and → its webhook receipt (the sink names each message
  by its arrival time);
* publication → the crawler's first request for the probe page (waiting: the poll schedule), and from
  there to the mail (working: crawl, process and alerts with every scheduling hop between them).

Nothing is modelled. The probes' outlets are picked at random, so a probe may land on an outlet whose
poll interval has grown while it was quiet — as news does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.cycle import add_to_feed, percentile
from bench.report import REPO, Row, bench_prefix, drop_prefix

OUTLETS = {  # outlet -> (language, a realistic AI headline with {token} in it)
    "circuit-daily": ("en", "OpenAI releases new reasoning model {token} for developers"),
    "policy-wire": ("en", "US regulators open inquiry into AI chatbot {token}"),
    "techbote": ("de", "Alibaba veröffentlicht KI-Sprachmodell {token} als Open Source"),
    "netzwacht": ("de", "Datenschutzbehörde sperrt KI-App {token} in Deutschland"),
    "xinzhi": ("zh", "阿里巴巴发布通义千问新模型 {token}"),
    "zhiku-news": ("zh", "美国限制英伟达人工智能芯片出口 {token}"),
}
PROBE_RULE = """
name: probe-{n}
owner: bench
query: {token}
channels:
  email: [bench@newsradar.test]
  slack: [bench]
mode: immediate
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def add_probe(site: Path, outlet: str, token: str) -> str:
    """A new article page and its feed item; returns the page's path."""
    lang, headline = OUTLETS[outlet]
    title = headline.format(token=token)
    path = f"/{outlet}/2026/12/{token}.html"
    now = datetime.now(UTC).isoformat()
    body = " ".join([title] * 12)
    page = (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
        f'<link rel="canonical" href="{{{{BASE_URL}}}}{path}">'
        f'<meta property="og:type" content="article"><meta property="article:published_time" content="{now}">'
        f"</head><body><article><h1>{title}</h1><p>{body}</p><p>{body}</p></article></body></html>"
    )
    target = site / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    add_to_feed(site, outlet, path, title)
    return path


def arrivals(mail_dir: Path, tokens: list[str]) -> dict[str, dict[str, float]]:
    """token -> {"mail": arrival, "slack": arrival}: the first message of each kind that names it."""
    found: dict[str, dict[str, float]] = {}
    for kind, pattern in (("mail", "*.eml"), ("slack", "slack/*.json")):
        for path in sorted(mail_dir.glob(pattern)):
            text = path.read_text(encoding="utf-8", errors="replace")
            # The sink names a mail by its arrival (ns); a post's file is written as it arrives.
            stamp = int(path.name.split("-", 1)[0]) / 1e9 if kind == "mail" else path.stat().st_mtime
            for token in tokens:
                if token in text:
                    found.setdefault(token, {}).setdefault(kind, stamp)
    return found


def measure(probes: int, window: float, timeout: float = 900.0) -> dict[str, Any]:
    from newsradar.settings import Settings
    from stack import airflow_local, esnode, mainjob
    from stack.replay import SAMPLE_SITE, ReplayServer

    tmp = Path(tempfile.mkdtemp(prefix="newsradar-bench-freshness-"))
    prefix = bench_prefix("fresh")
    settings = Settings(
        state_dir=tmp / "state",
        index_prefix=prefix,
        airflow_port=free_port(),
        replay_port=free_port(),
        mailsink_smtp_port=free_port(),
        mailsink_http_port=free_port(),
        rules_dir=tmp / "rules",
    )
    settings.rules_dir.mkdir(parents=True)
    site = tmp / "site"
    shutil.copytree(SAMPLE_SITE, site)
    mail_dir = mainjob.mail_dir(settings)
    env = {
        **mainjob.pipeline_env(settings, live=False),
        "NEWSRADAR_RULES_DIR": str(settings.rules_dir),
        "NEWSRADAR_SLACK_WEBHOOK_BENCH": f"http://127.0.0.1:{settings.mailsink_http_port}/slack/bench",
        "NEWSRADAR_MAILSINK_DIR": str(mail_dir),
    }
    echo = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    esnode.start(settings, echo)
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commands",
            "mailsink",
            "--smtp-port",
            str(settings.mailsink_smtp_port),
            "--http-port",
            str(settings.mailsink_http_port),
            "--directory",
            str(mail_dir),
        ],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: list[dict[str, Any]] = []
    try:
        with ReplayServer(site, port=settings.replay_port) as server:
            # Before the start: the scheduler may run the first crawl (and the process run it
            # triggers) before the api-server answers; the warm-up must count those runs too.
            began = datetime.now(UTC)
            airflow_local.start(settings, echo, extra_env=env, timeout=240)
            api = mainjob.AirflowApi(airflow_local.api_url(settings))
            mainjob._wait("the DAGs to be parsed", lambda: set(mainjob.PIPELINE) <= api.dag_ids(), 240, echo)
            for dag_id in mainjob.PIPELINE:
                api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
            echo("warm-up: the whole sample site, one cycle")
            crawls = mainjob._settle(api, "newsradar_crawl", began, timeout, echo)
            first = min(mainjob._when(r["end_date"]) for r in crawls) - timedelta(seconds=5)
            processed = mainjob._settle(api, "newsradar_process", first, timeout, echo)
            last = max(mainjob._when(r["end_date"]) for r in processed) - timedelta(seconds=5)
            mainjob._settle(api, "newsradar_alerts", last, timeout, echo)

            rng = random.Random(7)
            moments = sorted(rng.uniform(0, window) for _ in range(probes))
            start = time.time()
            planned: list[dict[str, Any]] = []
            for n, moment in enumerate(moments):
                time.sleep(max(0.0, start + moment - time.time()))
                token = f"nrprobe{n}x{uuid.uuid4().hex[:8]}"
                outlet = rng.choice(sorted(OUTLETS))
                (settings.rules_dir / f"probe-{n}.yaml").write_text(PROBE_RULE.format(n=n, token=token))
                path = add_probe(site, outlet, token)
                planned.append({"token": token, "outlet": outlet, "path": path, "published": time.time()})
                echo(f"probe {n + 1}/{probes} on {outlet} at +{moment:.0f} s")
            deadline = time.time() + timeout
            tokens = [p["token"] for p in planned]
            while time.time() < deadline:
                got = arrivals(mail_dir, tokens)
                if all({"mail", "slack"} <= set(got.get(t, {})) for t in tokens):
                    break
                time.sleep(2)
            got = arrivals(mail_dir, tokens)
            for probe in planned:
                fetched = server.httpd.first_hit.get(probe["path"])
                seen = got.get(probe["token"], {})
                results.append({**probe, "fetched": fetched, **seen})
    finally:
        airflow_local.stop(settings, echo)
        sink.terminate()
        sink.wait(timeout=30)
        from index.client import get_client

        drop_prefix(get_client(settings), prefix)
        shutil.rmtree(tmp, ignore_errors=True)
    missing = [p["token"] for p in results if "mail" not in p or "slack" not in p]
    if missing:
        raise RuntimeError(f"no alert arrived within {timeout:.0f} s for {len(missing)} probes: {missing}")
    mail = [p["mail"] - p["published"] for p in results]
    slack = [p["slack"] - p["published"] for p in results]
    waiting = [p["fetched"] - p["published"] for p in results if p.get("fetched")]
    working = [p["mail"] - p["fetched"] for p in results if p.get("fetched")]
    return {
        "probes": probes,
        "window_s": window,
        "mail_s": mail,
        "slack_s": slack,
        "waiting_s": waiting,
        "working_s": working,
        "results": results,
    }


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 4 probes over 4 minutes; full: 10 over 12 minutes)."""
    probes, window = (4, 240.0) if quick else (10, 720.0)
    r = measure(probes, window)
    sample = f"{r['probes']} probes at random moments of {r['window_s'] / 60:.0f} min, real scheduler"
    mean = statistics.mean
    total = mean(r["mail_s"])
    receipts = {"mail_s": "alert mail (SMTP receipt)", "slack_s": "Slack webhook receipt"}
    return [
        *(
            Row(
                "freshness",
                f"article on site -> {what}, p{round(q * 100)}",
                percentile(r[key], q),
                "s",
                300.0,
                "the 5-minute target",
                sample,
            )
            for key, what in receipts.items()
            for q in (0.5, 0.95)
        ),
        Row(
            "freshness",
            "waiting: publication -> the crawler fetches the page (mean)",
            mean(r["waiting_s"]),
            "s",
            total,
            "publication -> mail (mean)",
            sample,
        ),
        Row(
            "freshness",
            "working: page fetched -> mail (mean)",
            mean(r["working_s"]),
            "s",
            total,
            "publication -> mail (mean)",
            sample,
            "crawl, process, alerts and the scheduling between",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=10, help="probe articles to publish")
    parser.add_argument("--window", type=float, default=720.0, help="seconds over which they appear")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    r = measure(args.probes, args.window)
    summary = {key: value for key, value in r.items() if key != "results"} | {
        "mail_p50_s": percentile(r["mail_s"], 0.5),
        "mail_p95_s": percentile(r["mail_s"], 0.95),
        "slack_p50_s": percentile(r["slack_s"], 0.5),
        "slack_p95_s": percentile(r["slack_s"], 0.95),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
