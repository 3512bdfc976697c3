"""Alerting: rules over monitor results and KPIs, alerts with deduplication, and notifications that
are written to an outbox with the alert and sent (and retried) by the dispatcher."""

from modelsteward.alerts.channels import (
    DeliveryError,
    EmailSender,
    Notice,
    Sender,
    SlackSender,
    TicketSender,
    WebhookSender,
    sign,
    verify_signature,
)
from modelsteward.alerts.dispatcher import Dispatcher
from modelsteward.alerts.service import AlertService
from modelsteward.alerts.system import SystemAlarm

__all__ = [
    "AlertService",
    "DeliveryError",
    "Dispatcher",
    "EmailSender",
    "Notice",
    "Sender",
    "SlackSender",
    "SystemAlarm",
    "TicketSender",
    "WebhookSender",
    "sign",
    "verify_signature",
]
