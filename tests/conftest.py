"""Shared fixtures: a real Elasticsearch node, an Airflow metadata DB, isolated indices and state.

Airflow reads its configuration at import time, so the environment is set here, before any test
module imports airflow. Indices get a per-session prefix: tests never touch a user's data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="newsradar-tests-"))
PREFIX = f"newsradar-test-{uuid.uuid4().hex[:8]}"

os.environ["NEWSRADAR_INDEX_PREFIX"] = PREFIX
os.environ["NEWSRADAR_STATE_DIR"] = str(_TMP / "state")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["AIRFLOW_HOME"] = str(_TMP / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_TMP / 'airflow' / 'airflow.db'}"
(_TMP / "airflow").mkdir(parents=True, exist_ok=True)

from ledger import LEDGER, Ledger  # noqa: E402

from index.client import get_client  # noqa: E402
from newsradar.settings import Settings, get_settings  # noqa: E402
from stack import esnode as node  # noqa: E402


@pytest.fixture(scope="session")
def settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session")
def es(settings: Settings) -> Iterator[object]:
    """The real node: reuse a running one, else start it (and stop it again at the end)."""
    before = node.status(settings)
    node.start(settings, print)
    client = get_client(settings)
    yield client
    client.indices.delete(index=f"{PREFIX}-*", ignore_unavailable=True, allow_no_indices=True)
    client.options(ignore_status=404).indices.delete_index_template(name=f"{PREFIX}-*")
    if not before.running:
        node.stop(settings, print)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated Airflow metadata database for `dag.test()`."""
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="session", autouse=True)
def _cleanup_tmp() -> Iterator[None]:
    yield
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture
def fixtures_dir() -> Path:
    return ROOT / "tests" / "fixtures"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what each test needs, from the fixtures it uses (directly or through others), so a run can
    pick by need: `-m "not es and not airflow"` runs everything that needs neither service."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "es" in names:
            item.add_marker(pytest.mark.es)
        in_dags = "dags" in item.path.relative_to(ROOT / "tests").parts[:1]
        if in_dags or "airflow_db" in names or item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.airflow)


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    """The fault suite's totals (tests/ledger.py): a test records what it injected and what happened."""
    LEDGER.tests.append(request.node.nodeid)
    return LEDGER


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LEDGER.tests:
        return
    terminalreporter.write_sep("-", "reliability figures")
    terminalreporter.write_line(LEDGER.summary())
    target = os.environ.get("NEWSRADAR_RELIABILITY_REPORT")
    if target:
        LEDGER.write(Path(target))
