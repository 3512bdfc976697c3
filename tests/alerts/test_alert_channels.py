"""Each channel type end to end: an alert fires, the dispatcher sends it, a local receiver checks the payload."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_helpers import Clock, MailCollector, Receiver, add_rule, add_webhook, result

from modelsteward.alerts import AlertService, Dispatcher, verify_signature
from modelsteward.alerts.channels import Notice, WebhookSender
from modelsteward.domain.monitoring import Alert, Channel
from modelsteward.settings import Settings
from modelsteward.store.database import Database

SECRET = "whsec-9f8e7d6c5b4a"
BASE_URL = "https://steward.example.com/ui"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    # The payload formats do not depend on the store: these run on SQLite only (the service and
    # dispatcher tests cover both backends).
    database = Database(Settings(data_dir=tmp_path / "data").resolved_database_url())
    yield database
    database.dispose()


@pytest.fixture
def dispatcher(db: Database, clock: Clock) -> Iterator[Dispatcher]:
    sender = Dispatcher(db, clock=clock, base_url=BASE_URL, timeout=2.0, base_delay=1.0, max_delay=60.0)
    yield sender
    sender.close()


def fire_and_resolve(service: AlertService, dispatcher: Dispatcher, clock: Clock, channel: str) -> Alert:
    add_rule(service, channels=[channel], severity="critical")
    [alert] = service.evaluate_result(result())
    assert dispatcher.run_once(now=clock.now) == 1
    clock.advance(minutes=30)
    service.evaluate_result(result(status="ok"))
    assert dispatcher.run_once(now=clock.now) == 1
    deliveries = service.list_deliveries(alert_id=alert.id)
    assert [(d.event, d.status, d.attempts) for d in deliveries] == [("resolve", "sent", 1), ("fire", "sent", 1)]
    return alert


def test_webhook_payload_is_signed_with_a_timestamp(
    service: AlertService, dispatcher: Dispatcher, clock: Clock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_HOOK_SECRET", SECRET)
    add_webhook(service, "ops", receiver.url + "/hooks/steward", secret_env="OPS_HOOK_SECRET")
    alert = fire_and_resolve(service, dispatcher, clock, "ops")

    fire, resolve = receiver.requests
    assert fire.path == "/hooks/steward"
    assert fire.headers["content-type"] == "application/json"
    assert fire.headers["x-steward-event"] == "alert.fired"
    stamp, signature = fire.headers["x-steward-timestamp"], fire.headers["x-steward-signature"]
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, fire.body, signature=signature, timestamp=stamp)
    assert not verify_signature(SECRET, fire.body + b" ", signature=signature, timestamp=stamp)
    assert not verify_signature("another-secret", fire.body, signature=signature, timestamp=stamp)
    assert not verify_signature(SECRET, fire.body, signature=signature, timestamp=stamp, now=int(stamp) + 3600)

    body = json.loads(fire.body)
    assert body["event"] == "alert.fired" and body["alert_id"] == alert.id
    assert body["delivery_id"] == int(fire.headers["x-steward-delivery"])
    assert body["rule"] == "drift" and body["severity"] == "critical" and body["status"] == "firing"
    assert body["title"] == alert.title and body["occurrences"] == 1
    assert body["details"]["monitor"] == "credit-drift"
    assert body["first_fired_at"] == alert.first_fired_at.isoformat() and body["resolved_at"] is None
    assert body["url"] == f"{BASE_URL}/alerts/{alert.id}"

    after = json.loads(resolve.body)
    assert after["event"] == "alert.resolved" and after["status"] == "resolved" and after["resolved_at"]
    assert resolve.headers["x-steward-event"] == "alert.resolved"


def test_webhook_without_secret_is_not_signed_and_has_no_url_without_base_url(
    service: AlertService, db: Database, clock: Clock, receiver: Receiver
) -> None:
    add_webhook(service, "ops", receiver.url)
    add_rule(service, channels=["ops"])
    service.evaluate_result(result())
    plain = Dispatcher(db, clock=clock)
    plain.run_once(now=clock.now)
    plain.close()
    [request] = receiver.requests
    assert "x-steward-signature" not in request.headers and "url" not in json.loads(request.body)


def test_slack_payload_has_text_and_blocks(
    service: AlertService, dispatcher: Dispatcher, clock: Clock, receiver: Receiver
) -> None:
    service.put_channel(Channel(name="slack", type="slack", url=receiver.url + "/services/T0/B0/x"), actor="ana")
    alert = fire_and_resolve(service, dispatcher, clock, "slack")

    fire = receiver.json(0)
    assert set(fire) == {"text", "blocks"}
    assert fire["text"].startswith(":rotating_light: [FIRING] ") and alert.title in fire["text"]
    kinds = [block["type"] for block in fire["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert fire["blocks"][0]["text"]["text"].startswith("[FIRING]")
    fields = [f["text"] for f in fire["blocks"][1]["fields"]]
    assert "*Rule*\ndrift" in fields and "*Severity*\ncritical" in fields
    assert f"{BASE_URL}/alerts/{alert.id}" in fire["blocks"][3]["elements"][0]["text"]
    assert receiver.json(1)["text"].startswith(":white_check_mark: [RESOLVED]")


def test_slack_url_token_comes_from_the_environment(
    service: AlertService, dispatcher: Dispatcher, clock: Clock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_HOOK", "T0/B0/tok3n")
    service.put_channel(Channel(name="slack", type="slack", url=receiver.url + "/services/${SLACK_HOOK}"), "ana")
    add_rule(service, channels=["slack"])
    service.evaluate_result(result())
    assert dispatcher.run_once(now=clock.now) == 1
    assert receiver.requests[0].path == "/services/T0/B0/tok3n"
    assert "tok3n" not in json.dumps(service.get_channel("slack").model_dump())


def test_ticket_payload_is_jira_shaped(
    service: AlertService, dispatcher: Dispatcher, clock: Clock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_AUTH", "bot@example.com:api-token-123")
    jira = Channel(name="jira", type="ticket", url=receiver.url + "/rest/api/2/issue", project="MLOPS")
    service.put_channel(jira.model_copy(update={"secret_env": "JIRA_AUTH"}), actor="ana")
    alert = fire_and_resolve(service, dispatcher, clock, "jira")

    fields = receiver.json(0)["fields"]
    assert fields["project"] == {"key": "MLOPS"}
    assert fields["summary"] == alert.title
    assert fields["issuetype"] == {"name": "Incident"}
    assert fields["priority"] == {"name": "Highest"}
    assert "modelsteward" in fields["labels"] and "steward-rule-drift" in fields["labels"]
    assert f"steward-fp-{alert.fingerprint[:16]}" in fields["labels"]
    assert "[FIRING]" in fields["description"] and "Occurrences: 1" in fields["description"]
    assert receiver.requests[0].headers["authorization"].startswith("Basic ")
    resolved = receiver.json(1)["fields"]
    assert resolved["summary"].startswith("Resolved: ") and "steward-resolved" in resolved["labels"]


def test_email_goes_out_over_smtp_as_text_and_html(
    service: AlertService, dispatcher: Dispatcher, clock: Clock, smtp_server: tuple[MailCollector, int]
) -> None:
    collector, port = smtp_server
    mail = Channel(
        name="mail",
        type="email",
        smtp_host="127.0.0.1",
        smtp_port=port,
        sender="steward@bank.example",
        recipients=["risk@bank.example", "mlops@bank.example"],
    )
    service.put_channel(mail, actor="ana")
    alert = fire_and_resolve(service, dispatcher, clock, "mail")

    first, second = collector.envelopes
    assert first.mail_from == "steward@bank.example"
    assert first.rcpt_tos == ["risk@bank.example", "mlops@bank.example"]
    message = email.message_from_bytes(first.content, policy=email.policy.default)
    assert message["Subject"].startswith("[Steward][CRITICAL] [FIRING] ")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert alert.title in text and "Rule: drift" in text and f"{BASE_URL}/alerts/{alert.id}" in text
    assert "<table>" in html and "Open in Model Steward" in html
    again = email.message_from_bytes(second.content, policy=email.policy.default)
    assert "[RESOLVED]" in again["Subject"]


def test_email_starttls_refused_by_the_server_is_a_delivery_error(
    service: AlertService, dispatcher: Dispatcher, clock: Clock, smtp_server: tuple[MailCollector, int]
) -> None:
    collector, port = smtp_server
    mail = Channel(
        name="mail", type="email", smtp_host="127.0.0.1", smtp_port=port, sender="s@x.org", recipients=["a@x.org"]
    )
    service.put_channel(mail.model_copy(update={"smtp_starttls": True}), actor="ana")
    add_rule(service, channels=["mail"])
    service.evaluate_result(result())
    assert dispatcher.run_once(now=clock.now) == 0
    [delivery] = service.list_deliveries()
    assert delivery.status == "pending" and delivery.attempts == 1 and "STARTTLS" in (delivery.last_error or "")
    assert collector.envelopes == []


def test_a_missing_secret_variable_is_a_retried_delivery_error(
    service: AlertService, dispatcher: Dispatcher, clock: Clock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPS_HOOK_SECRET", raising=False)
    add_webhook(service, "ops", receiver.url, secret_env="OPS_HOOK_SECRET")
    add_rule(service, channels=["ops"])
    service.evaluate_result(result())
    assert dispatcher.run_once(now=clock.now) == 0
    [delivery] = service.list_deliveries()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "OPS_HOOK_SECRET is not set" in (delivery.last_error or "")
    assert receiver.requests == []

    monkeypatch.setenv("OPS_HOOK_SECRET", SECRET)
    assert delivery.next_attempt_at is not None
    assert dispatcher.run_once(now=delivery.next_attempt_at) == 1
    assert service.list_deliveries()[0].status == "sent"


def test_webhook_render_is_a_pure_function_of_the_notice(service: AlertService) -> None:
    add_rule(service)
    [alert] = service.evaluate_result(result())
    channel = Channel(name="ops", type="webhook", url="http://127.0.0.1:9")
    body = WebhookSender(http=None).render(channel, Notice(7, "fire", alert))  # type: ignore[arg-type]
    assert body["event"] == "alert.fired" and body["delivery_id"] == 7 and "url" not in body
