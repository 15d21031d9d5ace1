"""Run one DAG in-process with `dag.test()`: `python -m newsradar.dagrun DAG_ID [--conf JSON]`.

Used by the main job and by operators debugging a DAG without the scheduler. The Airflow
environment must be set before anything imports airflow, so the caller passes it in `env`.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newsradar.dagrun")
    parser.add_argument("dag_id")
    parser.add_argument("--conf", default="{}", help="run configuration as JSON")
    args = parser.parse_args(argv)

    from airflow.dag_processing.dagbag import DagBag

    from newsradar.settings import PROJECT_ROOT

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"import error in {path}:\n{error}", file=sys.stderr)
        return 2
    if args.dag_id not in bag.dags:
        print(f"no DAG {args.dag_id!r}; known: {', '.join(sorted(bag.dags))}", file=sys.stderr)
        return 2
    run = bag.dags[args.dag_id].test(run_conf=json.loads(args.conf))
    state = str(getattr(run, "state", "unknown"))
    print(f"dag run {args.dag_id}: {state}")
    return 0 if state.endswith("success") else 1


if __name__ == "__main__":
    raise SystemExit(main())
