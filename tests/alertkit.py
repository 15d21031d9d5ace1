"""Test kit for the alert tests: isolated settings per test, fixture articles written here and
indexed straight into a real index, a real SMTP server (aiosmtpd) and a real webhook server."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from index.mapping import articles_alias, ensure_articles_index
from newsradar.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated(settings: Settings, **overrides: Any) -> Settings:
    """Own index prefix (under the session prefix, so the session cleanup removes it)."""
    prefix = f"{settings.index_prefix}-{uuid.uuid4().hex[:8]}"
    values = {
        "index_prefix": prefix,
        "alerts_retry_base_s": 60.0,
        "slack_backoff_s": 0.05,
        "smtp_from": "alerts@newsradar.test",
        **overrides,
    }
    return settings.model_copy(update=values)


def token() -> str:
    """A word no other test's article contains, so a rule's query selects only this test's stories."""
    return "tk" + uuid.uuid4().hex[:10]


def article(
    story: str,
    source: str,
    lang: str,
    title: str,
    *,
    title_en: str | None = None,
    country: str | None = None,
    event_types: tuple[str, ...] = ("ban",),
    entities: tuple[str, ...] = (),
    seen: datetime | None = None,
    indexed: datetime | None = None,
    lead: str = "",
    ai_related: bool = True,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    doc_id = uuid.uuid4().hex[:20]
    url = f"https://{source}.example/{doc_id}"
    return {
        "id": doc_id,
        "url": url,
        "canonical_url": url,
        "source": source,
        "country": country,
        "lang": lang,
        "title": title,
        "text": f"{title}. {lead}",
        "lead": lead,
        "title_en": title_en,
        # A given English title stands for a machine translation (a glossary pass is not English).
        "translation_status": "translated" if title_en else None,
        "translation_backend": "libretranslate" if title_en else None,
        "lead_en": None,
        "event_types": list(event_types),
        "event_type": event_types[0] if event_types else "other",
        "event_scores": {kind: 0.9 for kind in event_types},
        "ai_related": ai_related,
        "entities": list(entities),
        "story_id": story,
        "published_at": (seen or now).isoformat(),
        "first_seen_at": (seen or now).isoformat(),
        "indexed_at": (indexed or now).isoformat(),
        "paywall": False,
    }


def index_articles(client: Elasticsearch, settings: Settings, docs: list[dict[str, Any]]) -> None:
    alias = ensure_articles_index(client, settings)
    bulk(client, [{"_index": alias, "_id": d["id"], "_source": d} for d in docs], refresh=True)
    client.indices.refresh(index=articles_alias(settings))


class MailSink:
    """A real SMTP server on 127.0.0.1 that keeps every message it receives, parsed."""

    def __init__(self, port: int | None = None, refuse: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = set(refuse)  # recipients answered with 550, as a server does for unknown ones
        self._controller: Controller | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such recipient"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def start(self) -> MailSink:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class WebhookServer:
    """A real HTTP server receiving webhook posts; ``script`` lists the answers to give in order
    (status, headers) or (status, headers, seconds to wait before answering), then 200 for
    everything after."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, str, Any]] = []
        self.script: list[tuple[int, dict[str, str]] | tuple[int, dict[str, str], float]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.requests.append((time.monotonic(), self.path, json.loads(body or b"null")))
                answer = server.script.pop(0) if server.script else (200, {})
                status, headers = answer[0], answer[1]
                if len(answer) > 2:
                    time.sleep(answer[2])  # type: ignore[misc]
                payload = b"ok" if status == 200 else b"error"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def later(hours: float = 0, minutes: float = 0) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours, minutes=minutes)
