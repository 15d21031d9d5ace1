"""Downloader components: replay redirection, conditional GET, retry backoff and a redirect guard.

Each is a small Scrapy component wired in `crawlers/settings.py`; the spiders never see them.
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
from pathlib import Path
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Spider
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task

from crawlers.state import CrawlState

# ------------------------------------------------------------------------------------------ replay


def replay_url(url: str, replay_base: str) -> str:
    """`https://host:port/path?q` -> `<replay_base>/host:port/path?q` (scheme dropped, port kept)."""
    parts = urlsplit(url)
    target = replay_base.rstrip("/") + "/" + parts.netloc + (parts.path or "/")
    return target + ("?" + parts.query if parts.query else "")


class ReplayDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler behind the address guard (below), or, when `NEWSRADAR_REPLAY_URL` is
    set, a fetch of every http(s) URL from the replay server (explicitly configured: recorded host
    names are not resolved, private literals are still refused).

    Rewriting happens below every middleware and the response keeps the original URL, so robots.txt,
    per-domain slots, redirects and relative links behave exactly as against the live host.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.replay_base: str = crawler.settings.get("NEWSRADAR_REPLAY_URL") or ""
        self.guard = AddressGuard(crawler, crawler.settings.get("NEWSRADAR_PRIVATE_REDIRECTS", "auto"))

    async def download_request(self, request: Request) -> Response:
        if not self.replay_base or request.url.startswith(self.replay_base.rstrip("/") + "/"):
            await self.guard.check(request)
            return await super().download_request(request)
        # Replayed: the recorded host is never resolved, but a private literal stays refused.
        await self.guard.check(request, resolve=False)
        replayed = request.replace(url=replay_url(request.url, self.replay_base))
        response = await super().download_request(replayed)
        location = response.headers.get("Location")
        if location:
            # Redirects must point back into the recorded site, not at the replay server's own paths.
            target = urljoin(replayed.url, location.decode("latin-1"))
            base = self.replay_base.rstrip("/") + "/"
            if target.startswith(base):
                rest = target[len(base) :]
                host, _, path = rest.partition("/")
                target = f"{urlsplit(request.url).scheme}://{host}/{path}"
            response.headers["Location"] = target
        return response.replace(url=request.url, request=request)


# -------------------------------------------------------------------------------- conditional GET


class ConditionalGetMiddleware:
    """Send If-None-Match / If-Modified-Since for feeds and sitemaps; a 304 reaches the spider.

    Requests opt in with `meta["newsradar_conditional"] = True`. Validators are read from the
    crawl state here, but only stored by the spider at the end of the crawl, and only for documents
    whose every article was handled: otherwise a failed article would hide behind a 304 forever.
    """

    def __init__(self, validators: dict[str, tuple[str | None, str | None]]) -> None:
        self.validators = validators

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("NEWSRADAR_STATE_DB")
        validators: dict[str, tuple[str | None, str | None]] = {}
        if path:
            with CrawlState(Path(path)) as state:
                validators = state.all_validators(batch=crawler.settings.get("NEWSRADAR_OUTPUT") or "")
        return cls(validators)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if not request.meta.get("newsradar_conditional"):
            return
        etag, modified = self.validators.get(request.url, (None, None))
        if etag:
            request.headers.setdefault("If-None-Match", etag)
        if modified:
            request.headers.setdefault("If-Modified-Since", modified)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if request.meta.get("newsradar_conditional") and response.status == 200:
            etag = response.headers.get("ETag")
            modified = response.headers.get("Last-Modified")
            if etag or modified:
                request.meta["newsradar_validators"] = (
                    etag.decode("latin-1") if etag else None,
                    modified.decode("latin-1") if modified else None,
                )
        return response


# ------------------------------------------------------------------------------------------ retries


class RetryBackoffMiddleware:
    """Wait before each retry, doubling per attempt (with jitter): a struggling server gets air.

    Scrapy's RetryMiddleware re-schedules at once; this one delays the re-scheduled request, keyed
    on the `retry_times` meta it sets.
    """

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(
            crawler.settings.getfloat("NEWSRADAR_RETRY_BACKOFF", 2.0),
            crawler.settings.getfloat("NEWSRADAR_RETRY_BACKOFF_MAX", 60.0),
        )

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        attempt = int(request.meta.get("retry_times", 0))
        if attempt <= 0 or self.base <= 0 or request.meta.get("newsradar_backoff_done") == attempt:
            return
        request.meta["newsradar_backoff_done"] = attempt
        delay = min(self.cap, self.base * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
        from twisted.internet import reactor

        await maybe_deferred_to_future(task.deferLater(reactor, delay, lambda: None))


# ------------------------------------------------------------------------------------------ redirects


def _ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host name denotes without DNS, in every spelling the system resolver accepts:
    besides dotted quads, `2130706433`, `0x7f000001`, `0177.0.0.1` and `127.1` all mean 127.0.0.1."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if not re.fullmatch(r"[0-9a-fx.]+", name):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Anything but a global unicast address: private, loopback, link-local, CGNAT (100.64.0.0/10, the
    cloud metadata service 100.100.100.200 among them), reserved, multicast — also when wrapped in an
    IPv6 address (IPv4-mapped, 6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if inner is not None and non_public(inner):
            return True
    return not address.is_global or address.is_multicast


def private_host(host: str | None) -> bool:
    """A non-public IP literal (in any spelling), or a name for this machine."""
    if not host:
        return True
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith((".localhost", ".local", ".internal")):
        return True
    address = _ip_literal(name)
    return address is not None and non_public(address)


class AddressGuard:
    """Refuse to connect to non-public addresses, whether a URL names one or its host name resolves
    to one, for every request (catalog feeds, links found in feeds, sitemaps and listing pages,
    redirects): a public page or DNS answer that points into 127.0.0.1, 10.0.0.0/8 or the metadata
    service probes the crawler's own network.

    The name is resolved through the reactor's resolver, Scrapy's caching one, so the connection made
    right after uses the very address checked here (no second lookup that could answer otherwise).
    `NEWSRADAR_PRIVATE_REDIRECTS` (the policy): `auto` allows private targets only for sources whose
    own configured URLs are private (a replay server, an intranet source), `allow` always, `deny` never.
    """

    def __init__(self, crawler: Crawler, policy: str) -> None:
        if policy not in {"auto", "allow", "deny"}:
            raise ValueError(f"NEWSRADAR_PRIVATE_REDIRECTS must be auto, allow or deny, not {policy!r}")
        self.crawler = crawler
        self.policy = policy
        self._private_hosts: set[str] | None = None

    @staticmethod
    def _configured(source: Any) -> list[str]:
        return [
            *getattr(source, "feeds", []),
            *getattr(source, "sitemaps", []),
            *getattr(source, "listing_pages", []),
        ]

    def private_sources_hosts(self) -> set[str]:
        """Hosts of the sources that are private themselves: requests there (robots.txt included,
        which carries no source) are the operator's own choice."""
        if self._private_hosts is None:
            sources = getattr(self.crawler.spider, "sources", [])
            self._private_hosts = {
                urlsplit(url).netloc
                for source in sources
                if (own := self._configured(source)) and all(private_host(urlsplit(u).hostname) for u in own)
                for url in own
            }
        return self._private_hosts

    def allows_private(self, request: Request) -> bool:
        if self.policy != "auto":
            return self.policy == "allow"
        own = self._configured(request.meta.get("source"))
        if own and all(private_host(urlsplit(url).hostname) for url in own):
            return True
        return urlsplit(request.url).netloc in self.private_sources_hosts()

    async def check(self, request: Request, resolve: bool = True) -> None:
        host = urlsplit(request.url).hostname
        if self.allows_private(request):
            return
        if private_host(host):
            raise IgnoreRequest(f"private_address: {request.url}")
        assert host is not None
        if not resolve or _ip_literal(host.strip("[]")) is not None:
            return  # a public literal: nothing to resolve
        from twisted.internet import reactor

        resolved = await maybe_deferred_to_future(reactor.resolver.getHostByName(host))
        address = _ip_literal(str(resolved))
        if address is None or non_public(address):
            raise IgnoreRequest(f"private_address: {host} resolves to {resolved}")


class RedirectGuardMiddleware:
    """Refuse redirects to non-http(s) schemes and, from public hosts, to private or loopback addresses.

    A public page that redirects into 127.0.0.1 or 10.0.0.0/8 probes the crawler's own network.
    `NEWSRADAR_PRIVATE_REDIRECTS`: `auto` allows it only when the redirecting host is itself private
    (a replay server or an intranet source), `allow` always, `deny` never. Sits just below Scrapy's
    RedirectMiddleware so it sees the 3xx first.
    """

    def __init__(self, policy: str) -> None:
        if policy not in {"auto", "allow", "deny"}:
            raise ValueError(f"NEWSRADAR_PRIVATE_REDIRECTS must be auto, allow or deny, not {policy!r}")
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.settings.get("NEWSRADAR_PRIVATE_REDIRECTS", "auto"))

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Any:
        location = response.headers.get(b"Location")
        if response.status not in {301, 302, 303, 307, 308} or not location:
            return response
        target = urljoin(request.url, location.decode("latin-1"))
        parts = urlsplit(target)
        if parts.scheme not in {"http", "https"}:
            raise IgnoreRequest(f"redirect_refused: scheme of {target}")
        refuse = self.policy == "deny" or not private_host(urlsplit(request.url).hostname)
        if private_host(parts.hostname) and self.policy != "allow" and refuse:
            raise IgnoreRequest(f"redirect_refused: private address {target}")
        return response
