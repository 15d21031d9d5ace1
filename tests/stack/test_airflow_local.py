"""The real local Airflow: start every component, see the DAGs through the REST API, stop cleanly."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from newsradar.settings import Settings
from stack import airflow_local


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_airflow_starts_lists_dags_and_stops(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", airflow_port=_free_port())
    try:
        url = airflow_local.start(settings, echo=lambda _: None, timeout=180)
        assert url == f"http://127.0.0.1:{settings.airflow_port}"
        pids = airflow_local.status(settings)
        assert all(pids.values()), pids
        # The dag-processor needs a parse cycle before the API knows the DAGs.
        dag_ids: set[str] = set()
        for _ in range(90):
            with urllib.request.urlopen(url + "/api/v2/dags", timeout=5) as response:
                dag_ids = {d["dag_id"] for d in json.load(response)["dags"]}
            if "newsradar_crawl" in dag_ids:
                break
            time.sleep(1)
        assert "newsradar_crawl" in dag_ids
        # Idempotent: a second start finds it running.
        assert airflow_local.start(settings, echo=lambda _: None) == url
    finally:
        airflow_local.stop(settings, echo=lambda _: None)
    assert not any(airflow_local.status(settings).values())
    assert not airflow_local.healthy(settings)
