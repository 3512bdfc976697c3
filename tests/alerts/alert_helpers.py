"""Helpers for the alerting tests: a hand-driven clock, results, a local HTTP receiver and a mail collector."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelsteward.alerts import AlertService
from modelsteward.domain.monitoring import AlertRule, Channel, MonitorResult

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def result(monitor: str = "credit-drift", status: str = "breach", **figures: Any) -> MonitorResult:
    """A monitor result as the monitoring service would hand it over."""
    return MonitorResult(
        monitor=monitor,
        status=status,  # type: ignore[arg-type]
        window_start=T0 - timedelta(days=1),
        window_end=T0,
        rows=500 if status != "not_enough_data" else 3,
        figures=figures,
        breaches=[{"check": "drift", "metric": "share_drifted", "value": 0.5, "threshold": 0.2}]
        if status == "breach"
        else [],
        error="boom" if status == "error" else None,
        started_at=T0,
        finished_at=T0,
    )


def add_webhook(service: AlertService, name: str, url: str, **fields: Any) -> Channel:
    return service.put_channel(Channel(name=name, type="webhook", url=url, **fields), actor="ana")


def add_rule(service: AlertService, name: str = "drift", **fields: Any) -> AlertRule:
    fields.setdefault("monitor", "credit-drift")
    rule = AlertRule(name=name, **fields)
    service.put_rule(rule, actor="ana")
    return rule


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A local HTTP endpoint that records every POST and answers with the next scripted status (then 200)."""

    def __init__(
        self,
        statuses: list[int] | None = None,
        *,
        delay: float = 0.0,
        body: bytes = b"error",
        echo_headers: bool = False,
    ) -> None:
        self.requests: list[Request] = []
        self.echo_headers = echo_headers
        self.statuses = list(statuses or [])
        self.delay = delay
        self.body = body
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        Request(self.path, {k.lower(): v for k, v in self.headers.items()}, payload)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = b"ok"
                if status >= 300:  # an error page; some servers echo the credentials they refused
                    echoed = f"denied: {self.headers.get('Authorization')}".encode()
                    answer = echoed if receiver.echo_headers else receiver.body
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailCollector:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"
