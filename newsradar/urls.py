"""Canonical URLs: one article, one key, whatever tracking parameters a feed appended."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "wt_", "at_", "ga_")
TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "igshid", "ref", "ref_src", "cmpid", "wt_mc", "spm"}


def canonicalize(url: str) -> str:
    """Lower-case scheme and host, drop fragments, default ports and tracking parameters, sort the rest."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets, or the URL stops parsing
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in TRACKING_PARAMS and not key.lower().startswith(TRACKING_PREFIXES)
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(sorted(query)), ""))


@lru_cache(maxsize=1)
def _suffixes() -> Any:
    """The public suffix list as packaged (never fetched: the machines reach no list server)."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registered_domain(url: str) -> str:
    """The domain a registrant controls: ``news.sina.com.cn`` → ``sina.com.cn``, ``foo.github.io`` →
    ``foo.github.io``. An IP address or a bare host name is its own registered domain."""
    host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    parts = _suffixes()(host)
    domain = ".".join(part for part in (parts.domain, parts.suffix) if part)
    return domain or host


def same_site(a: str, b: str, partners: tuple[str, ...] | list[str] = ()) -> bool:
    """True when ``a`` lies on the registered domain of ``b`` or of one of the declared partners."""
    mine = registered_domain(a)
    return mine == registered_domain(b) or mine in {p.lower().rstrip(".") for p in partners}
