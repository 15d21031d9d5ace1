"""Smoke test of the real stack: Airflow's own components run the pipeline, triggered and followed
through the REST API (what `newsradar run` does), and the Airflow UI shows the DAGs with their docs
in a real browser."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alertkit import free_port
from elasticsearch import Elasticsearch

from index.mapping import drop_articles
from newsradar.settings import Settings
from stack import mainjob
from stack.replay import SAMPLE_SITE

MANIFEST = json.loads((SAMPLE_SITE / "MANIFEST.json").read_text(encoding="utf-8"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def stack(es: Elasticsearch, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    mine = settings.model_copy(
        update={
            "index_prefix": f"{settings.index_prefix}-smoke",
            "state_dir": tmp_path_factory.mktemp("smoke-state"),
            "airflow_port": free_port(),
            "replay_port": free_port(),
            "web_port": free_port(),
            "mailsink_smtp_port": free_port(),
            "mailsink_http_port": free_port(),
        }
    )
    try:
        yield {"settings": mine, "facts": mainjob.run(mine, print, timeout=600)}
    finally:
        mainjob.stop(mine, print, keep_elasticsearch=True)
        drop_articles(es, mine)


@pytest.mark.slow
def test_real_airflow_runs_one_cycle(stack: dict) -> None:
    facts = stack["facts"]
    reachable = [page for page in MANIFEST if not page["robots_disallowed"]]
    assert facts["articles"] == len(reachable)
    assert set(facts["per_language"]) == {"de", "en", "zh"}
    assert facts["stories"] == len({page["story"] for page in reachable})
    assert facts["alerts"].get("sent", 0) >= 1
    assert facts["mails_received"] >= 1
    assert facts["mails_received"] + facts["slack_posts_received"] == facts["alerts"]["sent"]


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="chromium not installed")
def test_airflow_ui_lists_the_dags_with_their_docs(stack: dict, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{stack['settings'].airflow_port}"
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=args, headless=True
        )
        try:
            page = context.new_page()
            page.goto(f"{base}/dags", wait_until="networkidle")
            for dag_id in (
                "newsradar_crawl",
                "newsradar_process",
                "newsradar_alerts",
                "newsradar_maintenance",
            ):
                page.get_by_text(dag_id, exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "dags.png"), full_page=True)
            page.goto(f"{base}/dags/newsradar_crawl", wait_until="networkidle")
            page.get_by_role("button", name="Dag Docs").click(timeout=30_000)
            page.get_by_text("Collects new coverage", exact=False).first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "doc.png"), full_page=True)
        finally:
            context.close()
    assert (tmp_path / "dags.png").stat().st_size > 10_000
