"""Name every way a fetch can fail, so stats say *why* a source produced nothing.

Reasons are stable strings (documented in docs/crawlers.md): operators filter on them and tests
assert them.
"""

from __future__ import annotations

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from scrapy.spidermiddlewares.httperror import HttpError


def failure_reason(error: BaseException) -> str:
    """`robots`, `http_404`, `timeout`, `redirect_loop`, `too_large`, ... for one failed request."""
    if isinstance(error, HttpError):
        response = getattr(error, "response", None)
        return f"http_{response.status}" if response is not None else "http_error"
    if isinstance(error, IgnoreRequest):
        message = str(error)
        if "robots.txt" in message:
            return "robots"
        if "max redirections" in message:
            return "redirect_loop"
        if message.startswith("redirect_refused"):
            return "redirect_refused"
        if message.startswith("private_address"):
            return "private_address"
        if "DOWNLOAD_MAXSIZE" in message or "download max size" in message:
            return "too_large"
        return "ignored"
    if isinstance(error, DownloadTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, DownloadCancelledError):
        # The HTTP handler cancels a download whose body passes DOWNLOAD_MAXSIZE.
        return "too_large"
    if isinstance(error, CannotResolveHostError):
        return "dns"
    if isinstance(error, DownloadConnectionRefusedError | ConnectionRefusedError):
        return "connection_refused"
    if isinstance(error, ResponseDataLossError):
        return "truncated"
    if isinstance(error, UnsupportedURLSchemeError):
        return "bad_scheme"
    if isinstance(error, DownloadFailedError | ConnectionError):
        return "connection"
    name = type(error).__name__
    if "Timeout" in name or "TimedOut" in name:
        return "timeout"
    return "error_" + name
