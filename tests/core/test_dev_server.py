"""`make run` for a newcomer: one line per email, a branded admin whose "View site" leads somewhere."""

import logging

import pytest
from django.core import mail
from django.test import override_settings

from sandbox.management.commands.serve import Command


@override_settings(EMAIL_BACKEND="core.mail.SummaryEmailBackend")
def test_an_email_is_logged_as_one_line_without_its_body(caplog):
    with caplog.at_level(logging.INFO, logger="core.mail"):
        mail.send_mail("Your order 1 has shipped", "Hello Ada,\n\nlong body", "orders@example.com", ["ada@example.com"])
    assert [record.getMessage() for record in caplog.records if record.levelno == logging.INFO] == [
        "email to ada@example.com: Your order 1 has shipped"
    ]


def test_quiet_loggers_speak_only_at_debug(settings):
    assert settings.LOGGING["loggers"]["celery.app.trace"]["level"] == "WARNING"
    assert settings.LOGGING["loggers"]["django.server"]["level"] == "WARNING"


@pytest.mark.django_db
def test_the_admin_is_branded_and_view_site_is_the_api_docs(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Digital River back office" in page
    assert "Django administration" not in page
    assert 'href="/api/docs/"' in page
    assert admin_client.get("/api/docs/").status_code == 200


@override_settings(DEBUG=True)
def test_the_server_ends_with_the_address_and_the_login(capsys):
    command = Command()
    command.addr, command.port, command._raw_ipv6 = "127.0.0.1", "8000", False
    command.say_ready()
    assert capsys.readouterr().out.strip() == "ready: http://127.0.0.1:8000/admin/ — log in as admin / admin"
