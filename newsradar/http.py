"""Retries of HTTP calls, the same way for every client (Slack webhooks, LibreTranslate, ...): tenacity
with exponential backoff, honouring a server's ``Retry-After``.

A call signals "worth another try" by raising :class:`Transient`; anything else ends the retries at
once. What counts as transient is the caller's business: a refused connection always is, a read timeout
after a webhook request went out is not (the message may have arrived).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

T = TypeVar("T")


class Transient(Exception):
    """A failure that another attempt may cure; ``retry_after``: the server said when."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def retry_after(response: httpx.Response, default: float = 1.0) -> float:
    """Seconds from a ``Retry-After`` header (seconds form); ``default`` when absent or unreadable."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int,
    backoff: float,
    max_wait: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()`` until it returns, at most ``attempts`` times; the last :class:`Transient` is re-raised.
    Waits ``backoff``, 2×, 4×, ... seconds (capped at ``max_wait``), or what the server asked for."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Transient) and error.retry_after is not None:
            return min(error.retry_after, max_wait)
        return float(min(backoff * 2 ** (state.attempt_number - 1), max_wait))

    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait,
        retry=retry_if_exception_type(Transient),
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)
