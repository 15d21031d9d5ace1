"""Slack via incoming webhooks, with Block Kit.

The webhook URL is a secret: rules name a *connection*, resolved here from the environment
(``NEWSRADAR_SLACK_WEBHOOK_<NAME>``) or, under Airflow, from the Airflow connection of that id.

Headlines are untrusted: every piece of article text is mrkdwn-escaped (``&``, ``<``, ``>``), which
also defuses ``<!channel>``, ``<!here>`` and ``<@U…>`` mentions; bare ``@channel``/``@here`` get a
word joiner so no client turns them into a mention.

Retries inside one send are bounded: 429 waits the advertised Retry-After (up to
``slack_max_retry_after_s``, beyond that the outbox schedules the retry), 5xx and transport errors
back off exponentially for ``slack_max_retries`` tries. Incoming webhooks take no idempotency key,
so a POST that succeeded but whose outbox write was lost will be sent again (see docs/alerts.md).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from alerts.channel import Channel, Delivery, DeliveryError, Destination
from alerts.message import Message, StorySummary
from newsradar.http import Transient, retry_after, with_retries
from newsradar.settings import Settings

_MENTION = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_MAX_BLOCKS = 48
_SECTION_LIMIT = 2900


def escape(text: str) -> str:
    """mrkdwn-escape untrusted text: no links, mentions or broadcasts can come from a headline."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub("@\u2060\\1", text)


def link(url: str, label: str) -> str:
    """A mrkdwn link to an http(s) URL; anything else is shown as escaped text."""
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return escape(label or url)
    safe_url = quote(url, safe=":/?#[]@!$'()*+,;=%~-._").replace("&", "&amp;")
    return f"<{safe_url}|{escape(label or url).replace('|', '¦')}>"


class _HideWebhookPaths(logging.Filter):
    """httpx logs every request URL at INFO, and task logs keep INFO: a webhook URL's path is its
    credential, so it never reaches a log record (the host stays, for diagnosis)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: set[str] = set()

    def remember(self, url: str) -> None:
        path = urlsplit(url).path
        if len(path) > 1:
            self.paths.add(path)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.paths:
            message = record.getMessage()
            hidden = message
            for path in self.paths:
                hidden = hidden.replace(path, "/***")
            if hidden != message:
                record.msg, record.args = hidden, ()
        return True


_HIDE = _HideWebhookPaths()
logging.getLogger("httpx").addFilter(_HIDE)


def env_name(connection: str) -> str:
    return "NEWSRADAR_SLACK_WEBHOOK_" + re.sub(r"[^A-Z0-9]", "_", connection.upper())


def webhook_url(connection: str) -> str:
    """The secret URL of a named connection: environment first, then Airflow's connections."""
    url = os.environ.get(env_name(connection), "").strip()
    if url:
        _HIDE.remember(url)
        return url
    under_airflow = "AIRFLOW_CTX_DAG_ID" in os.environ or f"AIRFLOW_CONN_{connection.upper()}" in os.environ
    if under_airflow:
        try:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(connection)
        except Exception as error:  # Airflow raises its own not-found types per version
            raise DeliveryError(f"Airflow connection {connection!r}: {error}") from error
        password = conn.password or ""
        if password.startswith(("http://", "https://")):
            _HIDE.remember(password)
            return password
        if conn.host:
            host = conn.host if "://" in conn.host else f"https://{conn.host}"
            url = host.rstrip("/") + "/" + password.lstrip("/")
            _HIDE.remember(url)
            return url
    raise DeliveryError(
        f"no webhook for Slack connection {connection!r}: set {env_name(connection)} "
        f"or an Airflow connection {connection!r}"
    )


def _clip(text: str, limit: int = _SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, 1900)}]}


def _story_blocks(story: StorySummary, compact: bool) -> list[dict[str, Any]]:
    title = f"*[{escape(story.event_label.upper())}] {escape(story.english_title)}*"
    if story.is_update:
        title = f":arrows_counterclockwise: *Update* ({escape('; '.join(story.update_reasons))})\n" + title
    lines = [title]
    if story.headline_en and story.headline_en != story.headline:
        lines.append(f"_Original ({escape(story.lang or '?')}):_ {escape(story.headline)}")
        lines.append(f"_English {escape(story.headline_en_from or '')}_")
    lead = story.lead_en or story.lead
    if lead and not compact:
        lines.append(escape(" ".join(lead.split())[:500]))
    blocks = [_section("\n".join(lines))]
    facts = (
        f"{len(story.outlets)} outlets: {escape(', '.join(story.outlets))} · "
        f"languages: {escape(', '.join(story.languages))}"
    )
    if story.first_report:
        first = story.first_report
        facts += f" · first: {link(first.url, first.source)} ({escape(first.lang or '?')})"
    blocks.append(_context(facts))
    if not compact and story.links:
        items = [
            f"• [{escape(x.lang or '?')}] {escape(x.source)}: {link(x.url, x.title or x.url)}"
            for x in story.links
        ]
        blocks.append(_section("\n".join(items)))
    return blocks


def render(message: Message) -> dict[str, Any]:
    """Webhook payload: Block Kit blocks plus the ``text`` fallback used in notifications."""
    if message.kind == "operator":
        text = escape(message.text)
        return {"text": _clip(text), "blocks": [_section(":warning: *newsradar operator*\n" + text)]}
    if message.kind == "digest":
        count = len(message.stories)
        head = f"*Digest {escape(message.rule)}*: {count} new stor{'y' if count == 1 else 'ies'}"
        blocks: list[dict[str, Any]] = [_section(head)]
        for shown, story in enumerate(message.stories):
            new = [{"type": "divider"}, *_story_blocks(story, compact=True)]
            if len(blocks) + len(new) > _MAX_BLOCKS - 1:
                blocks.append(_context(f"… and {count - shown} more stories"))
                break
            blocks.extend(new)
        return {"text": head, "blocks": blocks}
    story = message.stories[0]
    fallback = f"[{story.event_label}] {'Update: ' if story.is_update else ''}{story.english_title}"
    blocks = _story_blocks(story, compact=False)
    blocks.append(_context(f"rule {escape(message.rule)}"))
    return {"text": _clip(escape(fallback)), "blocks": blocks}


class SlackChannel(Channel):
    """One outbox entry per webhook connection: each is delivered (and retried) on its own."""

    kind = "slack"
    operator_setting = "operator_slack"

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings)
        self.sleep = sleep

    @classmethod
    def destinations(cls, targets: list[str]) -> list[Destination]:
        return [Destination(f"slack:{name}", cls.kind, [name]) for name in targets]

    def send(self, delivery: Delivery) -> str:
        payload = render(delivery.message)
        receipts = [self._post(webhook_url(name), payload, name) for name in delivery.targets]
        return "; ".join(receipts)

    def _post(self, url: str, payload: dict[str, Any], name: str) -> str:
        """POST with retries where they cannot duplicate: refused or unreachable connections, 429
        and 5xx answers. A timeout or broken connection *after* the request went out is ambiguous:
        Slack may have posted it, and incoming webhooks have no idempotency key, so it is never
        re-posted blindly (``DeliveryError(ambiguous=True)``: the outbox records "maybe sent")."""
        cfg = self.settings
        tries = cfg.slack_max_retries + 1

        def once() -> str:
            try:
                response = httpx.post(url, json=payload, timeout=cfg.slack_timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                raise Transient(f"{type(error).__name__}: {error}") from None
            except httpx.TransportError as error:
                problem = f"slack:{name} may have received it ({type(error).__name__}: {error})"
                raise DeliveryError(problem, ambiguous=True) from error
            if 200 <= response.status_code < 300:
                return f"slack:{name} HTTP {response.status_code}"
            problem = f"HTTP {response.status_code} {response.text[:200]}"
            if response.status_code == 429:
                wait = retry_after(response)
                if wait > cfg.slack_max_retry_after_s:
                    raise DeliveryError(f"slack:{name} rate limited ({problem})", retry_after=wait)
                raise Transient(f"rate limited ({problem})", retry_after=wait)
            if response.status_code >= 500:
                raise Transient(problem)
            raise DeliveryError(f"slack:{name} rejected the message: {problem}", permanent=True)

        try:
            return with_retries(
                once,
                attempts=tries,
                backoff=cfg.slack_backoff_s,
                max_wait=cfg.slack_max_retry_after_s,
                sleep=self.sleep,
            )
        except Transient as error:
            raise DeliveryError(
                f"slack:{name} failed after {tries} tries: {error}", retry_after=error.retry_after
            ) from None

    def preview(self, message: Message) -> str:
        payload = render(message)
        texts = [payload["text"]]
        for block in payload["blocks"]:
            if block["type"] == "section":
                texts.append(block["text"]["text"])
            elif block["type"] == "context":
                texts.append(block["elements"][0]["text"])
        return "\n".join(texts)
