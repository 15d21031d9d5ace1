from __future__ import annotations

import pytest

from newsradar.urls import canonicalize


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM:443/a?utm_source=rss&id=3#top", "https://example.com/a?id=3"),
        ("http://example.com/a?b=2&a=1&fbclid=x", "http://example.com/a?a=1&b=2"),
        ("http://127.0.0.1:8765/x.html?utm_medium=feed", "http://127.0.0.1:8765/x.html"),
        ("https://example.com", "https://example.com/"),
    ],
)
def test_canonicalize(url: str, expected: str) -> None:
    assert canonicalize(url) == expected
