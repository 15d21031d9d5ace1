from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stack.replay import ReplayServer


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def test_placeholder_robots_and_404(fixtures_dir: Path) -> None:
    with ReplayServer(fixtures_dir / "skeleton_site") as server:
        status, body, _ = _get(server.url("feed.xml"))
        assert status == 200
        assert server.base_url.encode() + b"/zh/yingweida-chukou.html" in body
        assert b"{{BASE_URL}}" not in body
        status, body, _ = _get(server.url("robots.txt"))
        assert b"Disallow: /private/" in body
        assert _get(server.url("missing.html"))[0] == 404
        assert _get(server.url("../../conftest.py"))[0] == 404
        assert server.httpd.hits["/feed.xml"] == 1


def test_conditional_get_answers_304(fixtures_dir: Path) -> None:
    with ReplayServer(fixtures_dir / "skeleton_site") as server:
        status, _, headers = _get(server.url("feed.xml"))
        assert status == 200 and headers["ETag"]
        status, body, _ = _get(server.url("feed.xml"), {"If-None-Match": headers["ETag"]})
        assert status == 304 and body == b""
        status, _, _ = _get(server.url("feed.xml"), {"If-None-Match": '"other"'})
        assert status == 200
        assert server.httpd.not_modified["/feed.xml"] == 1


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ReplayServer(tmp_path / "nope")
