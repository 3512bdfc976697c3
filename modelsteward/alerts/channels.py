"""Senders: turn an alert notice into each channel type's payload (webhook, Slack, e-mail, ticket) and send it.

Secrets come from environment variables at send time and never leave this module except on the
wire: every error text is scrubbed of them before anyone stores or logs it.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import json
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape as html_escape
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx

from modelsteward.domain.monitoring import Alert, Channel
from modelsteward.errors import StewardError

SIGNATURE_HEADER = "X-Steward-Signature"
TIMESTAMP_HEADER = "X-Steward-Timestamp"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PRIORITY = {"critical": "Highest", "warning": "High", "info": "Low"}
_MAX_ERROR = 500


class DeliveryError(StewardError):
    """One attempt to send a notification failed; the message is safe to store (no secrets)."""

    code = "delivery_failed"
    http_status = 502


@dataclass(frozen=True)
class Notice:
    """One notification: an alert as it was when it fired or resolved, for one delivery."""

    delivery_id: int
    event: Literal["fire", "resolve"]
    alert: Alert
    url: str | None = None

    @property
    def event_name(self) -> str:
        return "alert.fired" if self.event == "fire" else "alert.resolved"

    @property
    def headline(self) -> str:
        state = "FIRING" if self.event == "fire" else "RESOLVED"
        return f"[{state}] {self.alert.title}"


class Sender(Protocol):
    """Sends one notice through one channel; raises DeliveryError on failure."""

    def render(self, channel: Channel, notice: Notice) -> Any: ...

    def send(self, channel: Channel, notice: Notice, env: Mapping[str, str]) -> None: ...


# -- signatures -----------------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Steward-Signature`` value: HMAC-SHA256 over ``"<timestamp>." + body``, as ``sha256=<hex>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str, body: bytes, *, signature: str, timestamp: str, tolerance: float = 300.0, now: float | None = None
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent (no replays).

    >>> verify_signature(os.environ["HOOK_SECRET"], request.body, signature=request.headers["X-Steward-Signature"],
    ...                  timestamp=request.headers["X-Steward-Timestamp"])
    """
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


# -- secrets and error texts ----------------------------------------------------------------------------


class _Secrets:
    """Reads a channel's variables and remembers every value read, to scrub them from error texts."""

    def __init__(self, channel: Channel, env: Mapping[str, str]) -> None:
        self.channel = channel
        self.env = env
        self.values: list[str] = []

    def get(self, variable: str) -> str:
        value = self.env.get(variable)
        if not value:
            raise DeliveryError(f"environment variable {variable} is not set (needed by channel {self.channel.name})")
        self.values.append(value)
        return value

    def url(self) -> str:
        """The channel's url with ``${VARIABLE}`` placeholders filled in (Slack-style URLs that hold a token)."""
        assert self.channel.url is not None
        url = _PLACEHOLDER.sub(lambda m: self.get(m.group(1)), self.channel.url)
        self.values.append(url)
        return url

    def scrub(self, text: str) -> str:
        for value in sorted(set(self.values), key=len, reverse=True):
            text = text.replace(value, "***")
        return text[:_MAX_ERROR]


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "the receiver"
    except ValueError:
        return "the receiver"


# -- text shared by the formats ---------------------------------------------------------------------------


def _when(notice: Notice) -> list[tuple[str, str]]:
    alert = notice.alert
    rows = [("First fired", alert.first_fired_at.isoformat()), ("Last fired", alert.last_fired_at.isoformat())]
    if alert.resolved_at is not None:
        rows.append(("Resolved", alert.resolved_at.isoformat()))
    return rows


def facts(notice: Notice) -> list[tuple[str, str]]:
    """The labelled lines every format shows, in order."""
    alert = notice.alert
    rows = [
        ("Rule", alert.rule),
        ("Severity", alert.severity),
        ("Status", alert.status),
        ("Occurrences", str(alert.occurrences)),
        *_when(notice),
    ]
    if alert.acknowledged_by:
        rows.append(("Acknowledged by", alert.acknowledged_by))
    return rows


def detail_lines(alert: Alert, *, max_breaches: int = 5) -> list[str]:
    """The alert's details as short ``key: value`` lines (breaches summarised, the rest as compact JSON)."""
    lines = []
    for key, value in alert.details.items():
        if key == "breaches":
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(", ", ": "))
        lines.append(f"{key}: {text}")
    for breach in alert.details.get("breaches", [])[:max_breaches]:
        where = f" [{breach.get('column')}]" if breach.get("column") else ""
        segment = f" segment {breach.get('segment')}" if breach.get("segment") else ""
        lines.append(
            f"breach: {breach.get('check')}{where}{segment} {breach.get('metric')} = {breach.get('value')} "
            f"(threshold {breach.get('threshold')})"
        )
    return lines


def plain_text(notice: Notice) -> str:
    lines = [notice.headline, ""]
    lines += [f"{label}: {value}" for label, value in facts(notice)]
    lines += ["", "Details:", *(f"  {line}" for line in detail_lines(notice.alert))]
    if notice.url:
        lines += ["", f"Open: {notice.url}"]
    lines += ["", f"Model Steward alert #{notice.alert.id}, delivery {notice.delivery_id}"]
    return "\n".join(lines) + "\n"


# -- HTTP senders ---------------------------------------------------------------------------------------


class HttpSender(abc.ABC):
    """Posts a JSON body; any transport error or non-2xx answer is a DeliveryError."""

    def __init__(self, http: httpx.Client, *, clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.clock = clock

    @abc.abstractmethod
    def render(self, channel: Channel, notice: Notice) -> dict[str, Any]:
        """The JSON body for this kind of receiver."""

    def auth_headers(self, secrets: _Secrets, body: bytes) -> dict[str, str]:
        """With ``secret_env`` set: sign the body and its timestamp (receivers reject stale timestamps)."""
        if secrets.channel.secret_env is None:
            return {}
        timestamp = str(int(self.clock()))
        secret = secrets.get(secrets.channel.secret_env)
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}

    def send(self, channel: Channel, notice: Notice, env: Mapping[str, str]) -> None:
        secrets = _Secrets(channel, env)
        body = json.dumps(self.render(channel, notice), separators=(",", ":"), default=str).encode()
        url = secrets.url()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "modelsteward-alerts",
            "X-Steward-Event": notice.event_name,
            "X-Steward-Delivery": str(notice.delivery_id),
            **self.auth_headers(secrets, body),
        }
        try:
            response = self.http.post(url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as e:
            raise DeliveryError(secrets.scrub(f"{type(e).__name__} posting to {_host(url)}: {e}")) from None
        if not response.is_success:
            snippet = response.text[:200].replace("\n", " ")
            raise DeliveryError(secrets.scrub(f"HTTP {response.status_code} from {_host(url)}: {snippet}"))


class WebhookSender(HttpSender):
    """A generic webhook: the alert as flat JSON, HMAC-signed when ``secret_env`` is set."""

    def render(self, channel: Channel, notice: Notice) -> dict[str, Any]:
        alert = notice.alert
        body: dict[str, Any] = {
            "event": notice.event_name,
            "delivery_id": notice.delivery_id,
            "alert_id": alert.id,
            "rule": alert.rule,
            "fingerprint": alert.fingerprint,
            "severity": alert.severity,
            "status": alert.status,
            "title": alert.title,
            "details": alert.details,
            "occurrences": alert.occurrences,
            "first_fired_at": alert.first_fired_at.isoformat(),
            "last_fired_at": alert.last_fired_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "acknowledged_by": alert.acknowledged_by,
        }
        if notice.url:
            body["url"] = notice.url
        return body


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSender(HttpSender):
    """A Slack-compatible incoming webhook: ``{"text": fallback, "blocks": [...]}``.

    Slack's webhook URL carries its token: write it as ``https://hooks.slack.com/services/${SLACK_HOOK}``.
    """

    def render(self, channel: Channel, notice: Notice) -> dict[str, Any]:
        icon = ":rotating_light:" if notice.event == "fire" else ":white_check_mark:"
        fields = [{"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value)}"} for label, value in facts(notice)]
        details = "\n".join(detail_lines(notice.alert)) or "no details"
        context = f"Model Steward alert #{notice.alert.id}"
        if notice.url:
            context += f" · <{notice.url}|open in Model Steward>"
        return {
            "text": f"{icon} {notice.headline}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": notice.headline[:150], "emoji": True}},
                {"type": "section", "fields": fields[:10]},
                {"type": "section", "text": {"type": "mrkdwn", "text": f"```{_slack_escape(details)[:2900]}```"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }


class TicketSender(HttpSender):
    """A Jira-style ticket webhook (``POST /rest/api/2/issue`` or an automation hook).

    A resolve notice has the same shape, its summary starts with ``Resolved:`` and it carries the label
    ``steward-resolved``; the label ``steward-fp-<fingerprint>`` ties it to the ticket its fire notice made.
    ``secret_env`` holds ``user:api-token`` (sent as Basic auth) or a bearer token.
    """

    def auth_headers(self, secrets: _Secrets, body: bytes) -> dict[str, str]:
        if secrets.channel.secret_env is None:
            return {}
        secret = secrets.get(secrets.channel.secret_env)
        if ":" in secret:
            basic = base64.b64encode(secret.encode()).decode()
            secrets.values.append(basic)
            return {"Authorization": f"Basic {basic}"}
        return {"Authorization": f"Bearer {secret}"}

    def render(self, channel: Channel, notice: Notice) -> dict[str, Any]:
        alert = notice.alert
        summary = (f"Resolved: {alert.title}" if notice.event == "resolve" else alert.title).replace("\n", " ")
        labels = [
            "modelsteward",
            f"steward-rule-{alert.rule}",
            f"steward-severity-{alert.severity}",
            f"steward-fp-{alert.fingerprint[:16]}",
        ]
        if notice.event == "resolve":
            labels.append("steward-resolved")
        return {
            "fields": {
                "project": {"key": channel.project},
                "summary": summary[:255],
                "description": plain_text(notice),
                "issuetype": {"name": "Incident"},
                "priority": {"name": _PRIORITY.get(alert.severity, "Medium")},
                "labels": labels,
            }
        }


# -- e-mail -----------------------------------------------------------------------------------------------


class EmailSender:
    """E-mail over SMTP: plain text plus a short HTML part; optional STARTTLS and login.

    ``smtp_user_env`` names the variable with the user name and ``secret_env`` the one with the password.
    """

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def render(self, channel: Channel, notice: Notice) -> EmailMessage:
        assert channel.sender is not None
        message = EmailMessage()
        message["Subject"] = f"[Steward][{notice.alert.severity.upper()}] {notice.headline}"[:250]
        message["From"] = channel.sender
        message["To"] = ", ".join(channel.recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=channel.sender.rpartition("@")[2] or "modelsteward.local")
        message["X-Steward-Alert"] = str(notice.alert.id)
        message["X-Steward-Event"] = notice.event_name
        message.set_content(plain_text(notice))
        rows = "".join(
            f"<tr><th align='left'>{html_escape(label)}</th><td>{html_escape(value)}</td></tr>"
            for label, value in facts(notice)
        )
        details = "".join(f"<li>{html_escape(line)}</li>" for line in detail_lines(notice.alert))
        link = f"<p><a href='{html_escape(notice.url)}'>Open in Model Steward</a></p>" if notice.url else ""
        message.add_alternative(
            f"<html><body><h3>{html_escape(notice.headline)}</h3><table>{rows}</table>"
            f"<ul>{details}</ul>{link}</body></html>",
            subtype="html",
        )
        return message

    def send(self, channel: Channel, notice: Notice, env: Mapping[str, str]) -> None:
        assert channel.smtp_host is not None
        secrets = _Secrets(channel, env)
        message = self.render(channel, notice)
        try:
            user = secrets.get(channel.smtp_user_env) if channel.smtp_user_env else None
            password = secrets.get(channel.secret_env) if user is not None and channel.secret_env else ""
            with smtplib.SMTP(
                channel.smtp_host, channel.smtp_port, timeout=self.timeout, local_hostname=socket.gethostname()
            ) as smtp:
                if channel.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if user is not None:
                    smtp.login(user, password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as e:
            text = f"{type(e).__name__} sending mail via {channel.smtp_host}:{channel.smtp_port}: {e}"
            raise DeliveryError(secrets.scrub(text)) from None


def default_senders(http: httpx.Client, *, timeout: float = 10.0) -> dict[str, Sender]:
    """One sender per channel type, sharing one HTTP connection pool."""
    return {
        "webhook": WebhookSender(http),
        "slack": SlackSender(http),
        "ticket": TicketSender(http),
        "email": EmailSender(timeout=timeout),
    }
