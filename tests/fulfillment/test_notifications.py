"""Customer and operations emails: the right words, once per event however often it arrives."""

import pytest
from django.core import mail

from fulfillment.models import Notification
from fulfillment.notifications import notifications_sweep
from tests.conftest import fixture, fulfillment_order

pytestmark = pytest.mark.django_db


def deliver_three_times(deliver, event_type: str, obj: dict) -> None:
    for _ in range(3):
        deliver(event_type, obj)  # three deliveries of one DR event: new envelope ids, same news


def test_shipped_email_with_tracking_once(accepted_order, deliver):
    shipment = fixture("event_fulfillment_order_shipped.json")["data"]["object"]
    mail.outbox.clear()
    deliver_three_times(deliver, "fulfillment_order.shipped", shipment)
    [email] = mail.outbox
    assert email.to == ["ada@example.com"]
    assert email.subject == "Your order 231388420336 has shipped"
    assert shipment["trackingNumber"] in email.body and shipment["trackingUrl"] in email.body
    assert "1 x Distributed widget" in email.body
    assert Notification.objects.get().sent_at is not None


def test_backordered_email_with_the_expected_date_and_how_to_cancel_once(accepted_order, deliver):
    backordered = fulfillment_order(pending=0, backordered=2, availableTime="2026-12-01T00:00:00Z")
    mail.outbox.clear()
    deliver_three_times(deliver, "fulfillment_order.backordered", backordered)
    [email] = mail.outbox
    assert "December 1, 2026" in email.body
    assert "cancel it for you" in email.body


def test_cancelled_email_once_when_the_payment_is_released(catalog, deliver, no_dr):
    deliver("order.accepted", fixture("order.json"))
    released = fixture("event_fulfillment_created.json")["data"]["object"]
    released["items"][0].update(quantity=0, cancelQuantity=1)
    mail.outbox.clear()
    deliver_three_times(deliver, "fulfillment.created", released)
    [email] = mail.outbox
    assert email.subject == "Items of your order 231388420336 were cancelled"
    assert "1 x Managed widget" in email.body


def test_capture_failure_goes_to_operations_once(accepted_order, deliver, settings):
    settings.OPERATIONS_EMAIL = "ops@shop.example"
    charge = fixture("event_order_charge_capture_failed.json")["data"]["object"]
    mail.outbox.clear()
    deliver_three_times(deliver, "order.charge.capture.failed", charge)
    [email] = mail.outbox
    assert email.to == ["ops@shop.example"]
    assert "contact the customer" in email.subject
    assert "ada@example.com" in email.body


def test_an_email_that_failed_to_send_is_sent_by_the_sweep(accepted_order, deliver, settings, monkeypatch):
    from django.utils import timezone

    def smtp_down(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", smtp_down)
    deliver("fulfillment_order.shipped", fixture("event_fulfillment_order_shipped.json")["data"]["object"])
    notification = Notification.objects.get()
    assert notification.sent_at is None and "smtp down" in notification.error
    monkeypatch.undo()
    Notification.objects.update(created_at=timezone.now() - timezone.timedelta(minutes=5))
    mail.outbox.clear()
    assert notifications_sweep() == 1
    assert len(mail.outbox) == 1
    assert Notification.objects.get().sent_at is not None


def test_gathered_emails_go_out_each_once_and_one_the_server_refuses_waits_for_the_sweep(monkeypatch):
    from django.core.mail import EmailMessage

    from fulfillment.notifications import MAX_ATTEMPTS, notifications_send

    rows = unsent_emails(count=4, order_id="1001")
    rows[3].sent_at = rows[3].created_at  # sent before: not again
    rows[3].save()
    Notification.objects.filter(pk=rows[2].pk).update(attempts=MAX_ATTEMPTS)  # given up: not again
    send = EmailMessage.send

    def refuse_the_second(message, *args, **kwargs):
        if message.to == ["c1@example.com"]:
            raise ConnectionRefusedError("mailbox unavailable")
        return send(message, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "send", refuse_the_second)
    mail.outbox.clear()

    written = notifications_send(notification_ids=[row.pk for row in rows])

    assert sorted(row.pk for row in written) == [rows[0].pk, rows[1].pk]
    assert [message.to for message in mail.outbox] == [["c0@example.com"]]
    first, second = Notification.objects.get(pk=rows[0].pk), Notification.objects.get(pk=rows[1].pk)
    assert first.sent_at is not None and first.attempts == 1 and first.error == ""
    assert second.sent_at is None and second.attempts == 1 and "mailbox unavailable" in second.error
    assert Notification.objects.get(pk=rows[2].pk).attempts == MAX_ATTEMPTS
    assert notifications_send(notification_ids=[rows[0].pk]) == []  # sent once only


def test_when_the_mail_server_is_away_every_gathered_email_records_why(settings):
    import socket

    from fulfillment.notifications import notifications_send

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = (
        "127.0.0.1",
        port,
        False,
        2,
    )
    rows = unsent_emails(count=2, order_id="1002")

    notifications_send(notification_ids=[row.pk for row in rows])

    for row in Notification.objects.filter(pk__in=[row.pk for row in rows]):
        assert row.sent_at is None and row.attempts == 1 and "ConnectionRefusedError" in row.error


class DroppingSMTP:
    """smtplib.SMTP as far as Django's backend uses it: the server drops the connection while it takes
    the mail for c1@example.com, once; like smtplib, a dropped connection refuses every later command."""

    delivered: list[str] = []
    dropped = False
    opened = 0

    def __init__(self, host, port, **kwargs):
        self.alive = True
        DroppingSMTP.opened += 1

    def sendmail(self, from_addr, to_addrs, msg):
        import smtplib

        if not self.alive:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        if to_addrs == ["c1@example.com"] and not DroppingSMTP.dropped:
            DroppingSMTP.dropped, self.alive = True, False
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        DroppingSMTP.delivered.extend(to_addrs)

    def quit(self):
        import smtplib

        if not self.alive:
            raise smtplib.SMTPServerDisconnected("please run connect() first")

    def close(self):
        self.alive = False


def test_gathered_emails_share_a_connection_and_one_it_dropped_costs_only_that_email(settings, monkeypatch):
    from fulfillment.notifications import notifications_send

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    monkeypatch.setattr("django.core.mail.backends.smtp.EmailBackend.connection_class", DroppingSMTP)
    DroppingSMTP.delivered, DroppingSMTP.dropped, DroppingSMTP.opened = [], False, 0
    rows = unsent_emails(count=4, order_id="1003")

    notifications_send(notification_ids=[row.pk for row in rows])

    assert DroppingSMTP.delivered == ["c0@example.com", "c2@example.com", "c3@example.com"]
    assert DroppingSMTP.opened == 2  # one for the batch, one after the server dropped it
    assert list(Notification.objects.filter(sent_at=None).values_list("to", flat=True)) == ["c1@example.com"]


def unsent_emails(*, count: int, order_id: str) -> list[Notification]:
    """Shipped emails to c0@example.com, c1@… of one order, not sent yet."""
    from commerce.models import Order

    order = Order.objects.create(dr_order_id=order_id, currency="USD")
    return [
        Notification.objects.create(
            order=order, kind="shipped", key=f"shipped:{order_id}:{n}", to=f"c{n}@example.com", subject="s", body="b"
        )
        for n in range(count)
    ]
