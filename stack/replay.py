"""A local HTTP server that replays recorded pages and feeds on 127.0.0.1.

It stands in for the internet in tests and in the demo: the crawler fetches from it exactly as
from a live site (robots.txt, conditional GET with ETag/Last-Modified, content types), so no test
needs a network. Text files may contain `{{BASE_URL}}`, replaced at serve time by the server's own
address, so recorded feeds link back to the replay server whatever port it got.

Recordings of live sites go under one folder per host (`<root>/www.heise.de/rss/heise-atom.xml`);
with `NEWSRADAR_REPLAY_URL` set the crawler fetches `https://www.heise.de/rss/heise-atom.xml` from
`<replay>/www.heise.de/rss/heise-atom.xml` (query strings are ignored when resolving files). A
missing `<host>/robots.txt` allows everything.

Fault endpoints, under any prefix (`/_fault/...` or `/<host>/_fault/...`), for tests:
`status/<code>`, `slow/<seconds>` (answers late), `redirect/<n>` (an endless redirect chain),
`loop` (redirects to itself), `redirect-to?url=<url>`, `huge/<bytes>` (an HTML page of that size),
`gzip-bomb/<megabytes>` (a small gzip body that inflates to that size), `charset/<label>/<path>`
(a recorded file served with a lying or chosen charset header) and `drop` (closes the connection).
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import mimetypes
import threading
import time
from collections import Counter
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

PLACEHOLDER = b"{{BASE_URL}}"
TEXT_SUFFIXES = {".html", ".htm", ".xml", ".rss", ".atom", ".json", ".txt", ".css", ".js"}
DEFAULT_ROBOTS = b"User-agent: *\nDisallow:\n"
SAMPLE_SITE = Path(__file__).resolve().parent / "sample_site"

mimetypes.add_type("application/rss+xml", ".rss")
mimetypes.add_type("application/atom+xml", ".atom")

FAULT = "/_fault/"
_FAULT_ARTICLE = (
    b"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Slow page</title></head>"
    b"<body><article><h1>Slow page</h1><p>"
    + b"This page answers late. " * 20
    + b"</p></article></body></html>"
)


@lru_cache(maxsize=4)
def _gzip_bomb(megabytes: int) -> bytes:
    return gzip.compress(b"\0" * (megabytes * 1024 * 1024), compresslevel=9)


class _Handler(BaseHTTPRequestHandler):
    server: ReplayHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _resolve(self) -> Path | None:
        path = unquote(urlsplit(self.path).path)
        root = self.server.root
        target = (root / path.lstrip("/")).resolve()
        if root not in target.parents and target != root:
            return None
        if target.is_dir():
            target = target / "index.html"
        return target if target.is_file() else None

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str], head_only: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _fault(self, path: str, head_only: bool) -> None:
        """Misbehave on purpose; see the module docstring for the endpoints."""
        prefix, _, rest = path.partition(FAULT)
        kind, _, arg = rest.partition("/")
        html = {"Content-Type": "text/html; charset=utf-8"}
        if kind == "status" and arg.isdigit():
            self._send(HTTPStatus(int(arg)), b"<html><body>fault</body></html>", html, head_only)
        elif kind == "slow":
            time.sleep(float(arg or 5))
            self._send(HTTPStatus.OK, _FAULT_ARTICLE, html, head_only)
        elif kind in {"redirect", "loop", "redirect-to"}:
            if kind == "redirect":
                location = f"{prefix}{FAULT}redirect/{int(arg or 0) + 1}"
            elif kind == "loop":
                location = path
            else:
                location = parse_qs(urlsplit(self.path).query).get("url", ["/"])[0]
            self._send(HTTPStatus.FOUND, b"", {"Location": location}, head_only)
        elif kind == "huge":
            size = int(arg or 20_000_000)
            body = b"<html><body><p>" + b"x" * max(0, size - 30) + b"</p></body></html>"
            self._send(HTTPStatus.OK, body, html, head_only)
        elif kind == "gzip-bomb":
            body = _gzip_bomb(int(arg or 64))
            self._send(HTTPStatus.OK, body, {**html, "Content-Encoding": "gzip"}, head_only)
        elif kind == "charset":
            label, _, file_path = arg.partition("/")
            target = (self.server.root / file_path).resolve()
            if self.server.root not in target.parents or not target.is_file():
                self._send(HTTPStatus.NOT_FOUND, b"not found", {"Content-Type": "text/plain"}, head_only)
                return
            body = target.read_bytes().replace(PLACEHOLDER, self.server.base_url.encode("ascii"))
            self._send(HTTPStatus.OK, body, {"Content-Type": f"text/html; charset={label}"}, head_only)
        elif kind == "drop":
            self.close_connection = True
            self.connection.close()
        else:
            self._send(HTTPStatus.NOT_FOUND, b"unknown fault", {"Content-Type": "text/plain"}, head_only)

    def _serve(self, head_only: bool) -> None:
        path = urlsplit(self.path).path
        self.server.hits[path] += 1
        self.server.first_hit.setdefault(path, time.time())
        if FAULT in path:
            self._fault(path, head_only)
            return
        target = self._resolve()
        if target is None:
            if path == "/robots.txt" or (path.endswith("/robots.txt") and path.count("/") == 2):
                self._send(HTTPStatus.OK, DEFAULT_ROBOTS, {"Content-Type": "text/plain"}, head_only)
                return
            self._send(HTTPStatus.NOT_FOUND, b"not found", {"Content-Type": "text/plain"}, head_only)
            return
        body = target.read_bytes()
        if target.suffix.lower() in TEXT_SUFFIXES:
            body = body.replace(PLACEHOLDER, self.server.base_url.encode("ascii"))
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        modified = email.utils.formatdate(target.stat().st_mtime, usegmt=True)
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        headers = {"Content-Type": ctype, "ETag": etag, "Last-Modified": modified}
        if self.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in self.headers and self.headers.get("If-Modified-Since") == modified
        ):
            self.server.not_modified[path] += 1
            self._send(HTTPStatus.NOT_MODIFIED, b"", {"ETag": etag, "Last-Modified": modified}, True)
            return
        self._send(HTTPStatus.OK, body, headers, head_only)

    def do_GET(self) -> None:
        self._serve(head_only=False)

    def do_HEAD(self) -> None:
        self._serve(head_only=True)


class ReplayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, host: str, port: int, verbose: bool = False) -> None:
        super().__init__((host, port), _Handler)
        self.root = root.resolve()
        self.verbose = verbose
        self.hits: Counter[str] = Counter()
        self.first_hit: dict[str, float] = {}  # path -> when it was first asked for (epoch seconds)
        self.not_modified: Counter[str] = Counter()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up (timeouts, size caps, the `drop` fault) are normal here, not errors."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class ReplayServer:
    """Run a replay server in a background thread: `with ReplayServer(root) as server: server.url(...)`."""

    def __init__(self, root: Path = SAMPLE_SITE, host: str = "127.0.0.1", port: int = 0) -> None:
        if not root.is_dir():
            raise FileNotFoundError(f"replay directory {root} does not exist")
        self.httpd = ReplayHTTPServer(root, host, port)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="replay", daemon=True)

    @property
    def base_url(self) -> str:
        return self.httpd.base_url

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(root: Path, host: str, port: int) -> None:
    """Foreground server for `newsradar replay`."""
    httpd = ReplayHTTPServer(root, host, port, verbose=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
