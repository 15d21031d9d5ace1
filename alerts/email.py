"""Email over SMTP: multipart text + HTML, a stable Message-ID per alert.

The Message-ID is derived from the outbox entry (alert id + destination), so a message re-sent after
a crash carries the same id and a receiving system (mail server, list manager, client) can drop the
duplicate. Updates set In-Reply-To/References to the original alert, so mail clients thread them.
Everything taken from articles is HTML-escaped; header values are stripped of line breaks.
"""

from __future__ import annotations

import html
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from alerts.channel import Channel, Delivery, DeliveryError, Destination, PartialDelivery
from alerts.message import Message, StorySummary
from newsradar.settings import Settings

_SAFE_URL = re.compile(r"^https?://", re.IGNORECASE)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_id(key: str, settings: Settings) -> str:
    domain = settings.smtp_from.rpartition("@")[2] or "newsradar.local"
    return f"<{key}@{_one_line(domain, 100).strip('<>')}>"


def subject(message: Message) -> str:
    if message.kind == "operator":
        return _one_line(f"[newsradar operator] {message.text.splitlines()[0] if message.text else ''}")
    if message.kind == "digest":
        count = len(message.stories)
        when = (message.period or "")[:16].replace("T", " ")
        return _one_line(
            f"[newsradar digest] {message.rule}: {count} new stor{'y' if count == 1 else 'ies'} ({when} UTC)"
        )
    story = message.stories[0]
    prefix = "Update: " if story.is_update else ""
    return _one_line(f"[{story.event_label}] {prefix}{story.english_title}")


def _story_text(story: StorySummary) -> str:
    lines = [f"[{story.event_label.upper()}] {story.english_title}"]
    if story.is_update:
        lines.append("UPDATE: " + "; ".join(story.update_reasons))
    lines.append(f"Original ({story.lang or '?'}): {story.headline}")
    if story.headline_en:
        lines.append(f"English ({story.headline_en_from or 'English'}): {story.headline_en}")
    lead = story.lead_en or story.lead
    if lead:
        lines.append(_one_line(lead, 600))
    lines.append(
        f"Outlets ({len(story.outlets)}): {', '.join(story.outlets)}"
        f" | Languages: {', '.join(story.languages)}"
        + (f" | Countries: {', '.join(story.countries)}" if story.countries else "")
    )
    if story.entities:
        lines.append("Entities: " + ", ".join(story.entities[:12]))
    if story.first_report:
        first = story.first_report
        lines.append(
            f"First report: {first.source} ({first.lang or '?'}) {first.first_seen_at or ''} {first.url}"
        )
    lines.append("Links:")
    lines.extend(f"  - [{link.lang or '?'}] {link.source}: {link.title} {link.url}" for link in story.links)
    return "\n".join(lines)


def _href(url: str) -> str:
    return html.escape(url, quote=True) if _SAFE_URL.match(url) else ""


def _story_html(story: StorySummary) -> str:
    e = html.escape
    parts = [f"<h2>[{e(story.event_label)}] {e(story.english_title)}</h2>"]
    if story.is_update:
        parts.append(f"<p><strong>Update:</strong> {e('; '.join(story.update_reasons))}</p>")
    parts.append(f"<p><strong>Original ({e(story.lang or '?')}):</strong> {e(story.headline)}</p>")
    if story.headline_en:
        source = e(story.headline_en_from or "English")
        parts.append(f"<p><strong>English ({source}):</strong> {e(story.headline_en)}</p>")
    lead = story.lead_en or story.lead
    if lead:
        parts.append(f"<p>{e(_one_line(lead, 600))}</p>")
    parts.append(
        f"<p><strong>Outlets ({len(story.outlets)}):</strong> {e(', '.join(story.outlets))}"
        f" &middot; <strong>Languages:</strong> {e(', '.join(story.languages))}"
        + (
            f" &middot; <strong>Countries:</strong> {e(', '.join(story.countries))}"
            if story.countries
            else ""
        )
        + "</p>"
    )
    if story.first_report:
        first = story.first_report
        parts.append(
            f'<p><strong>First report:</strong> <a href="{_href(first.url)}">{e(first.source)}</a>'
            f" ({e(first.lang or '?')}) {e(first.first_seen_at or '')}</p>"
        )
    items = "".join(
        f"<li>[{e(link.lang or '?')}] {e(link.source)}: "
        f'<a href="{_href(link.url)}">{e(link.title or link.url)}</a></li>'
        for link in story.links
    )
    parts.append(f"<ul>{items}</ul>")
    return "\n".join(parts)


def render(message: Message) -> tuple[str, str, str]:
    """(subject, text, html) of a message."""
    if message.kind == "operator":
        return subject(message), message.text, f"<pre>{html.escape(message.text)}</pre>"
    header = f"Rule: {message.rule}" + (f" ({message.rule_description})" if message.rule_description else "")
    text = header + "\n\n" + "\n\n".join(_story_text(s) for s in message.stories)
    body = "\n<hr>\n".join(_story_html(s) for s in message.stories)
    page = f"<html><body><p>{html.escape(header)}</p>\n{body}\n</body></html>"
    return subject(message), text + "\n", page


class EmailChannel(Channel):
    """Every recipient of a rule gets the same mail: one outbox entry for all of them."""

    kind = "email"
    operator_setting = "operator_email"

    @classmethod
    def destinations(cls, targets: list[str]) -> list[Destination]:
        return [Destination("email", cls.kind, list(targets))]

    def build(self, delivery: Delivery) -> EmailMessage:
        title, text, page = render(delivery.message)
        mail = EmailMessage()
        mail["Subject"] = title
        mail["From"] = self.settings.smtp_from
        mail["To"] = ", ".join(delivery.targets)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = message_id(delivery.key, self.settings)
        mail["X-Newsradar-Alert"] = delivery.message.alert_id
        mail["X-Newsradar-Rule"] = delivery.message.rule
        if delivery.message.parent_id:
            parent = message_id(f"{delivery.message.parent_id}-email", self.settings)
            mail["In-Reply-To"] = parent
            mail["References"] = parent
        mail.set_content(text)
        mail.add_alternative(page, subtype="html")
        return mail

    def send(self, delivery: Delivery) -> str:
        if not delivery.targets:
            raise DeliveryError("no recipients", permanent=True)
        mail = self.build(delivery)
        cfg = self.settings
        try:
            smtp: smtplib.SMTP
            if cfg.smtp_ssl:
                smtp = smtplib.SMTP_SSL(
                    cfg.smtp_host,
                    cfg.smtp_port,
                    timeout=cfg.smtp_timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout)
            with smtp:
                if cfg.smtp_starttls and not cfg.smtp_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.smtp_user:
                    password = cfg.smtp_password.get_secret_value() if cfg.smtp_password else ""
                    smtp.login(cfg.smtp_user, password)
                refused = smtp.send_message(mail, from_addr=cfg.smtp_from, to_addrs=delivery.targets)
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"SMTP authentication failed: {error}", permanent=True) from error
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(
                f"SMTP {cfg.smtp_host}:{cfg.smtp_port}: {type(error).__name__}: {error}"
            ) from error
        if refused:
            # Accepted for some recipients: resending would duplicate for the others, so only the
            # refused ones are tried again.
            reasons = "; ".join(f"{rcpt}: {code} {msg!r}" for rcpt, (code, msg) in sorted(refused.items()))
            raise PartialDelivery(str(mail["Message-ID"]), sorted(refused), f"SMTP refused {reasons}")
        return str(mail["Message-ID"])

    def preview(self, message: Message) -> str:
        title, text, _ = render(message)
        return f"Subject: {title}\n\n{text}"
