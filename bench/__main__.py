"""Every benchmark, one table: `python -m bench [--quick] [--only NAME ...] [--json OUT]`.

Each benchmark runs in its own Python process (`python -m bench --child NAME`): the Airflow
benchmarks configure Airflow before importing it, Scrapy's reactor starts once per process, models
free their memory, and one benchmark failing becomes a row saying so instead of ending the run.
Their progress goes to stderr; stdout carries only the final table. All rows are also written as
JSON (default `bench/results/<UTC timestamp>.json`) for tracking figures over time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import REPO, Row, ensure_node, peak_rss_mib, table

#: Benchmark name -> module under bench/, in the order they run (cheap and data-driven first).
BENCHMARKS = {
    "extraction": "bench.extraction",
    "enrich_quality": "bench.enrich_quality",
    "judgment": "bench.judgment",
    "neardup": "bench.neardup",
    "enrich_speed": "bench.enrich_speed",
    "crawl": "bench.crawl",
    "index_search": "bench.index_search",
    "alerts": "bench.alerts",
    "scaling": "bench.scaling",
    "dagparse": "bench.dagparse",
    "cycle": "bench.cycle",
    "freshness": "bench.freshness",
}

#: Benchmarks that talk to the Elasticsearch node: the run starts it (or reuses the running one) first.
NEEDS_NODE = frozenset({"index_search", "alerts", "scaling", "cycle", "freshness"})


def child(name: str, quick: bool, out: Path) -> int:
    module = importlib.import_module(BENCHMARKS[name])
    rows: list[Row] = module.run(quick)
    out.write_text(json.dumps([row.as_json() for row in rows], ensure_ascii=False), encoding="utf-8")
    # Peak memory of the benchmark: its own process, or the largest child it waited for (a crawl, a task).
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out.with_suffix(".rss").write_text(f"{max(peak_rss_mib(), children):.1f}", encoding="utf-8")
    return 0


def run_one(name: str, quick: bool, timeout: float) -> tuple[list[Row], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix=f"newsradar-bench-{name}-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, "-m", "bench", "--child", name, "--rows", str(out)] + (
            ["--quick"] if quick else []
        )
        print(f"== {name}{' (quick)' if quick else ''}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=sys.stderr, timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = -1
        seconds = time.perf_counter() - started
        meta: dict[str, Any] = {"seconds": round(seconds, 1), "rc": rc}
        rss = out.with_suffix(".rss")
        if rss.is_file():
            meta["peak_rss_mib"] = float(rss.read_text(encoding="utf-8"))
        peak = f", peak RSS {meta['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in meta else ""
        print(f"== {name}: {seconds:.0f} s, exit {rc}{peak}", file=sys.stderr, flush=True)
        if rc == 0 and out.is_file():
            return [Row.from_json(row) for row in json.loads(out.read_text(encoding="utf-8"))], meta
        why = (
            f"timed out after {timeout:.0f} s"
            if rc == -1
            else f"failed (exit {rc}; its log is above on stderr)"
        )
        return [Row(name, "failed", None, "", note=why)], meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples: about 10 minutes on 2 cores")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--json", type=Path, help="results file (default bench/results/<UTC timestamp>.json)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one benchmark may take")
    parser.add_argument("--child", choices=list(BENCHMARKS), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.quick, args.rows)

    started = datetime.now(UTC)
    names = args.only or list(BENCHMARKS)
    if NEEDS_NODE.intersection(names):
        ensure_node()
    rows: list[Row] = []
    runs: dict[str, Any] = {}
    for name in names:
        got, meta = run_one(name, args.quick, args.timeout)
        rows.extend(got)
        runs[name] = {**meta, "rows": [row.as_json() for row in got]}
    total = (datetime.now(UTC) - started).total_seconds()
    durations = ", ".join(
        f"{name} {runs[name]['seconds']:.0f} s"
        + (f" / {runs[name]['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in runs[name] else "")
        for name in names
    )
    print(
        f"\nnewsradar benchmarks, {'quick' if args.quick else 'full'} run, {os.cpu_count()} CPUs, "
        f"{started:%Y-%m-%d %H:%M} UTC, {total / 60:.1f} min (time / peak RSS per benchmark: {durations})\n"
    )
    print(table(rows))
    target = args.json or REPO / "bench" / "results" / f"{started:%Y%m%dT%H%M%SZ}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "seconds": round(total, 1),
                "quick": args.quick,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "benchmarks": runs,
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    print(f"\nresults: {target}", file=sys.stderr)
    failed = [name for name in names if runs[name]["rc"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
