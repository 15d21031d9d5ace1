"""DAG parse time: how long Airflow's DagBag takes to load `dags/`, next to a one-task DAG file.

Run ``python -m bench.dagparse [--repeat N]``. The dag-processor re-parses every DAG file every
`[dag_processor] refresh_interval`, so top-level work in a DAG file is paid again and again; this
keeps an eye on it. Each folder is parsed in a fresh Python process that has already imported
Airflow (as the dag-processor has):

* cold — the first parse in that process: includes importing what the DAG files import
  (`newsradar.settings`, `dagkit`, pendulum, ...);
* warm — the mean of N further parses (modules cached; the DAG files themselves run again);
* per file — the warm mean of each DAG file parsed alone.

Baseline, same run and same method: a folder holding one minimal TaskFlow DAG (one task, no imports
beyond `airflow.sdk` and pendulum).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import REPO, Row

DAGS = REPO / "dags"
EMPTY_DAG = '''"""A minimal DAG: the parse-time baseline."""
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="bench_empty", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def bench_empty() -> None:
    @task
    def noop() -> None:
        pass

    noop()


bench_empty()
'''


def probe(folder: Path, repeat: int) -> dict[str, Any]:
    """Runs inside the fresh process: Airflow imported first (untimed), then the timed parses."""
    from airflow.dag_processing.dagbag import DagBag

    def parse(path: Path) -> tuple[float, int, int]:
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(path))
        return time.perf_counter() - started, len(bag.dags), len(bag.import_errors)

    cold, dags, errors = parse(folder)
    warm = [parse(folder)[0] for _ in range(repeat)]
    files = {
        path.name: statistics.mean(parse(path)[0] for _ in range(repeat))
        for path in sorted(folder.glob("*.py"))
    }
    return {
        "cold_s": cold,
        "warm_s": statistics.mean(warm),
        "dags": dags,
        "import_errors": errors,
        "files": files,
    }


def _in_fresh_process(folder: Path, repeat: int, home: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONPATH": str(REPO),
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.dagparse", "--probe", str(folder), "--repeat", str(repeat)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def measure(repeat: int) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="newsradar-bench-dagparse-") as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        (empty / "bench_empty.py").write_text(EMPTY_DAG)
        home = Path(tmp) / "airflow"
        home.mkdir()
        return {
            "dags": _in_fresh_process(DAGS, repeat, home),
            "empty": _in_fresh_process(empty, repeat, home),
        }


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 3 warm parses each, full: 10)."""
    repeat = 3 if quick else 10
    got = measure(repeat)
    ours, empty = got["dags"], got["empty"]
    base_ms = empty["warm_s"] * 1000
    sample = f"{ours['dags']} DAGs, {ours['import_errors']} import errors; warm = mean of {repeat}"
    rows = [
        Row(
            "dagparse",
            "DagBag load of dags/, cold",
            ours["cold_s"] * 1000,
            "ms",
            empty["cold_s"] * 1000,
            "one-task DAG, cold",
            "first parse in a process that imported Airflow",
        ),
        Row(
            "dagparse",
            "DagBag load of dags/, warm",
            ours["warm_s"] * 1000,
            "ms",
            base_ms,
            "one-task DAG",
            sample,
        ),
    ]
    for name, seconds in ours["files"].items():
        rows.append(
            Row(
                "dagparse",
                f"parse {name}, warm",
                seconds * 1000,
                "ms",
                base_ms,
                "one-task DAG",
                f"mean of {repeat}",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="warm parses per folder and per file")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe, args.repeat)))
        return 0
    got = measure(args.repeat)
    ours, empty = got["dags"], got["empty"]
    print(f"{'folder':28} {'cold ms':>9} {'warm ms':>9}")
    label = f"dags/ ({ours['dags']} DAGs)"
    print(f"{label:28} {ours['cold_s'] * 1000:9.1f} {ours['warm_s'] * 1000:9.1f}")
    print(f"{'one-task DAG (baseline)':28} {empty['cold_s'] * 1000:9.1f} {empty['warm_s'] * 1000:9.1f}")
    for name, seconds in ours["files"].items():
        print(f"  {name:26} {'':>9} {seconds * 1000:9.1f}")
    print(
        f"ratio warm dags/ / baseline: {ours['warm_s'] / empty['warm_s']:.1f}x "
        f"({ours['warm_s'] / empty['warm_s'] / max(1, ours['dags']):.1f}x per DAG)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
