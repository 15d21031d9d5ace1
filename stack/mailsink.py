"""A local message sink for the embedded default: an SMTP server on loopback that keeps every
message as an .eml file, a Slack-webhook-compatible endpoint (`POST /slack/<name>`) that keeps every
post as JSON, and a small read-only web page to read both.

It stands in for a team's mailbox and Slack channel in the demo, so alerts can be seen without any
real mail server or Slack workspace.
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import threading
import time
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


class _Store:
    """Write each message atomically under a sortable name (arrival time + counter)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._counter = 0

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self._counter += 1
            name = f"{time.time_ns()}-{self._counter:05d}.eml"
        data = envelope.original_content or b""
        tmp = self.directory / (name + ".partial")
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode())
        tmp.replace(self.directory / name)
        return "250 Message accepted for delivery"


def read_messages(directory: Path) -> list[tuple[str, EmailMessage]]:
    messages = []
    for path in sorted(directory.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        messages.append((path.stem, parsed))
    return messages


def read_posts(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """Webhook posts, oldest first, as (channel name, payload)."""
    posts = []
    for path in sorted((directory / "slack").glob("*.json")):
        channel, _, _ = path.stem.partition("--")
        posts.append((channel, json.loads(path.read_text(encoding="utf-8"))))
    return posts


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


class _Viewer(BaseHTTPRequestHandler):
    server: _ViewerServer

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _send(self, status: HTTPStatus, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        name = self.path.removeprefix("/slack/").strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1_000_000))
        if not self.path.startswith("/slack/") or not name.replace("_", "").replace("-", "").isalnum():
            self._send(HTTPStatus.NOT_FOUND, "<p>post to /slack/NAME</p>")
            return
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            self._send(HTTPStatus.BAD_REQUEST, "invalid_payload")
            return
        folder = self.server.directory / "slack"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}--{time.time_ns()}.json"
        target.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        self._send(HTTPStatus.OK, "ok")

    def do_GET(self) -> None:
        messages = read_messages(self.server.directory)
        if self.path.startswith("/message/"):
            wanted = self.path.removeprefix("/message/")
            for key, message in messages:
                if key == wanted:
                    subject, to = html.escape(str(message["Subject"])), html.escape(str(message["To"]))
                    body = html.escape(_text_of(message))
                    self._send(
                        HTTPStatus.OK,
                        f"<h1>{subject}</h1><p>To: {to}</p><pre>{body}</pre>"
                        "<p><a href='/'>all messages</a></p>",
                    )
                    return
            self._send(HTTPStatus.NOT_FOUND, "<p>no such message</p>")
            return
        rows = "".join(
            f"<tr><td>{html.escape(str(m['Date']))}</td><td>{html.escape(str(m['To']))}</td>"
            f"<td><a href='/message/{key}'>{html.escape(str(m['Subject']))}</a></td></tr>"
            for key, m in reversed(messages)
        )
        posts = "".join(
            f"<tr><td>#{html.escape(channel)}</td><td>{html.escape(str(payload.get('text', '')))}</td></tr>"
            for channel, payload in reversed(read_posts(self.server.directory))
        )
        self._send(
            HTTPStatus.OK,
            "<!doctype html><meta charset='utf-8'><title>newsradar mail sink</title>"
            f"<h1>Mail sink: {len(messages)} messages</h1>"
            f"<table border=1 cellpadding=4><tr><th>Date</th><th>To</th><th>Subject</th></tr>{rows}</table>"
            f"<h2>Slack webhook posts</h2><table border=1 cellpadding=4>{posts}</table>",
        )


class _ViewerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: Path, host: str, port: int) -> None:
        super().__init__((host, port), _Viewer)
        self.directory = directory


def serve(directory: Path, host: str = "127.0.0.1", smtp_port: int = 1025, http_port: int = 8025) -> None:
    """Run both servers until interrupted."""
    controller = Controller(_Store(directory), hostname=host, port=smtp_port)
    controller.start()
    viewer = _ViewerServer(directory, host, http_port)
    try:
        viewer.serve_forever()
    finally:
        viewer.server_close()
        controller.stop()
