"""Secrets never reach logs, exceptions, stored errors or command output.

The SMTP password (used for AUTH against a real aiosmtpd server), a Slack webhook URL whose path is
its token, the admin token and an Elasticsearch URL with a password are set, then a crawl, alert
deliveries that succeed and fail, `newsradar es status` and the settings repr run with every log
record captured (DEBUG, all loggers). Records of the SMTP server itself (`mail.log`, standing in for
the remote mail server) are not ours and are left out.

The web UI being read-only without an admin token is proven in tests/test_web.py
(test_read_only_without_admin_token, test_token_from_a_config_file_is_not_enough,
test_saved_search_creates_an_alert_rule).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from alertkit import MailSink, WebhookServer, article, index_articles, isolated, token
from elasticsearch import Elasticsearch
from pydantic import SecretStr

from alerts.rules import Rule
from alerts.runner import run_once
from alerts.state import search_all
from alerts.store import RuleSet
from crawlers.catalog import sample_catalog
from crawlers.run import run_crawl
from index.mapping import outbox_index
from newsradar.settings import PROJECT_ROOT, Settings, redact_url
from stack.replay import SAMPLE_SITE, ReplayServer

SMTP_PASSWORD = "smtp-Pa55-7f3a9c"
WEBHOOK_TOKEN = "XoXb9Secret7Tok3n"
ADMIN_TOKEN = "admin-tok-51d0e2"
ES_PASSWORD = "es-Pa55-b8e4d1"
SLACK_API_KEY = "lt-key-0c4f"
SECRETS = (SMTP_PASSWORD, WEBHOOK_TOKEN, ADMIN_TOKEN, ES_PASSWORD, SLACK_API_KEY)


def _variants() -> list[str]:
    """Each secret as is and as SMTP AUTH would encode it."""
    out = list(SECRETS)
    out.append(base64.b64encode(f"\0alerts\0{SMTP_PASSWORD}".encode()).decode())
    out.append(base64.b64encode(SMTP_PASSWORD.encode()).decode())
    return out


def assert_clean(text: str, where: str) -> None:
    for secret in _variants():
        assert secret not in text, f"a secret appears in {where}"


class AuthSink(MailSink):
    """The alert kit's SMTP server, requiring AUTH PLAIN with one user and password (loopback only,
    so without TLS)."""

    def start(self) -> AuthSink:
        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and data == (b"alerts", SMTP_PASSWORD.encode())
            return AuthResult(success=ok, handled=False)

        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_require_tls=False,
            auth_required=True,
            auth_exclude_mechanism=["LOGIN"],
        )
        self._controller.start()
        return self


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRADAR_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("NEWSRADAR_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("NEWSRADAR_LIBRETRANSLATE_API_KEY", SLACK_API_KEY)


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.stop()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # Earlier tests (Airflow's logging set-up) may have silenced or detached library loggers; a log
    # line that never reaches caplog would make "no secret in the logs" pass for the wrong reason.
    saved = []
    for name in ("httpx", "httpcore", "elastic_transport", "newsradar", "alerts"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.disabled, logger.propagate, logger.level))
        logger.disabled, logger.propagate = False, True
        logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for logger, disabled, propagate, level in saved:
        logger.disabled, logger.propagate = disabled, propagate
        logger.setLevel(level)


def _our_logs(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "")
        for r in caplog.records
        if not r.name.startswith("mail.log")
    )


def test_settings_repr_hides_secrets() -> None:
    cfg = Settings(
        smtp_password=SecretStr(SMTP_PASSWORD),
        admin_token=SecretStr(ADMIN_TOKEN),
        libretranslate_api_key=SecretStr(SLACK_API_KEY),
        es_url=f"https://newsradar:{ES_PASSWORD}@es01:9200",
    )
    for text in (repr(cfg), str(cfg)):
        assert_clean(text, "the settings repr")
        assert "https://newsradar:***@es01:9200" in text
    assert cfg.es_url.endswith(f":{ES_PASSWORD}@es01:9200")  # the value itself is intact for the client
    assert redact_url("http://127.0.0.1:9200") == "http://127.0.0.1:9200"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_alert_delivery_never_logs_smtp_password_or_webhook(
    es: Elasticsearch,
    settings: Settings,
    hook: WebhookServer,
    secret_env: None,
    all_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = AuthSink().start()
    tok = token()
    webhook = hook.url(f"/services/T0001/B0002/{WEBHOOK_TOKEN}")
    monkeypatch.setenv(f"NEWSRADAR_SLACK_WEBHOOK_TEAM_{tok.upper()}", webhook)
    cfg = isolated(
        settings,
        smtp_port=sink.port,
        smtp_user="alerts",
        smtp_password=SecretStr(SMTP_PASSWORD),
        slack_max_retries=0,
        alerts_max_attempts=1,
        operator_email="ops@example.org",
        smtp_timeout=10.0,
    )
    index_articles(es, cfg, [article(f"{tok}-s{n}", "heise", "de", f"Verbot {tok} {n}") for n in range(2)])
    rule = Rule.model_validate(
        {
            "name": f"r-{tok}",
            "owner": "t",
            "query": tok,
            "channels": {"email": ["desk@example.org"], "slack": [f"team_{tok}"]},
        }
    )
    rules = RuleSet(rules=[rule])
    hook.script = [(200, {}), (404, {})]  # one story's post accepted, the other's rejected
    try:
        report = run_once(es, cfg, rules=rules)
        wrong = cfg.model_copy(
            update={
                "smtp_password": SecretStr(SMTP_PASSWORD + "-old"),
                "index_prefix": cfg.index_prefix + "-w",
            }
        )
        index_articles(es, wrong, [article(f"{tok}-w", "heise", "de", f"Verbot {tok} w")])
        refused = run_once(es, wrong, rules=rules)
    finally:
        sink.stop()
    # 2 alert mails, 1 post and the operator notice about the refused post
    assert report.delivery.sent == 4 and report.delivery.failed == 1
    assert len(sink.messages) == 3  # the 2 alerts and the operator notice about the refused post
    assert refused.delivery.failed >= 1 and "authentication failed" in " ".join(refused.delivery.errors)
    assert any(WEBHOOK_TOKEN in path for _, path, _ in hook.requests)  # it was used...

    stored = []
    for c in (cfg, wrong):
        es.indices.refresh(index=outbox_index(c))
        hits = search_all(es, outbox_index(c), {"match_all": {}}, [{"doc_id": "asc"}])
        stored += [h["_source"] for h in hits]
    assert any(e.get("last_error") for e in stored)
    assert any("HTTP Request: POST" in r.getMessage() for r in all_logs.records)  # httpx did log the post
    out = capsys.readouterr()
    # ...and appears nowhere else: not in logs, outbox errors and receipts, operator mails or output.
    assert_clean(_our_logs(all_logs), "log records")
    assert_clean(json.dumps(stored), "the outbox")
    assert_clean(json.dumps([report.as_json(), refused.as_json()]), "run reports")
    assert_clean("\n".join(m.as_string() for m in sink.messages), "mails")
    assert_clean(out.out + out.err, "stdout/stderr")


def test_cli_and_crawl_output_carry_no_secrets(
    tmp_path: Path, secret_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        **os.environ,
        "NEWSRADAR_ES_URL": f"http://elastic:{ES_PASSWORD}@127.0.0.1:9200",
        "NEWSRADAR_SLACK_WEBHOOK_TEAM": f"https://hooks.example/services/T1/B2/{WEBHOOK_TOKEN}",
        "NEWSRADAR_STATE_DIR": str(tmp_path / "state"),
    }
    status = subprocess.run(
        [sys.executable, "-m", "commands", "es", "status"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    assert "http://elastic:***@127.0.0.1:9200" in status.stdout  # the node answered: security is off here
    assert_clean(status.stdout + status.stderr, "`newsradar es status`")
    down = {**env, "NEWSRADAR_ES_URL": f"http://elastic:{ES_PASSWORD}@127.0.0.1:9"}
    for command in (["es", "status"], ["alerts", "run"]):
        proc = subprocess.run(
            [sys.executable, "-m", "commands", *command],
            cwd=PROJECT_ROOT,
            env=down,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "127.0.0.1:9" in proc.stdout + proc.stderr, proc.stderr  # the failure names the node...
        assert_clean(proc.stdout + proc.stderr, f"`newsradar {' '.join(command)}` against a stopped node")

    # A crawl at DEBUG with every secret in its environment: the Scrapy log and the stats stay clean.
    monkeypatch.setenv("NEWSRADAR_ES_URL", env["NEWSRADAR_ES_URL"])
    monkeypatch.setenv("NEWSRADAR_SLACK_WEBHOOK_TEAM", env["NEWSRADAR_SLACK_WEBHOOK_TEAM"])
    with ReplayServer(SAMPLE_SITE) as server:
        source = next(s for s in sample_catalog(server.base_url, SAMPLE_SITE) if s.name == "techbote")
        result = run_crawl(
            [source],
            tmp_path / "crawl.jsonl",
            settings=Settings(state_dir=tmp_path / "s"),
            extra_settings={"LOG_LEVEL": "DEBUG"},
        )
    assert result.articles > 0 and "DEBUG" in result.log
    assert_clean(result.log, "the crawl log")
    assert_clean(Path(result.stats_file).read_text(), "the crawl stats")
    assert_clean(Path(result.output).read_text(), "the batch")
