"""How the outbox classifies SMTP failures, backs off, and renders emails (no database)."""

import smtplib

import pytest
from django.test import override_settings

from notifications.drafting import email_render
from notifications.outbox import _backoff, _is_permanent


@pytest.mark.parametrize(
    "exc, permanent",
    [
        (smtplib.SMTPDataError(451, b"try later"), False),
        (smtplib.SMTPDataError(550, b"no such user"), True),
        (smtplib.SMTPSenderRefused(421, b"busy", "a@b"), False),
        (smtplib.SMTPRecipientsRefused({"a@b": (450, b"greylisted")}), False),
        (smtplib.SMTPRecipientsRefused({"a@b": (550, b"unknown")}), True),
        (smtplib.SMTPServerDisconnected("lost"), False),
        (ConnectionRefusedError(111, "refused"), False),
        (TimeoutError("timed out"), False),
        (ValueError("Invalid address"), True),
    ],
)
def test_temporary_and_permanent_failures(exc, permanent):
    assert _is_permanent(exc) is permanent


@override_settings(OUTBOX_RETRY_SECONDS=10, OUTBOX_RETRY_MAX_SECONDS=100)
def test_backoff_doubles_up_to_a_ceiling():
    assert 10 <= _backoff(1).total_seconds() <= 12.5
    assert 40 <= _backoff(3).total_seconds() <= 50
    assert 100 <= _backoff(20).total_seconds() <= 125


def test_email_render_escapes_html_only_and_translates():
    context = {
        "recipient": {"username": "<bob>", "language": "ja"},
        "mentions": [{"room": "lobby", "username": "al&ce", "message": "<b>hi</b>", "url": "http://x/chat/lobby/"}],
        "count": 1,
        "unsubscribe_url": "http://x/unsubscribe/t/",
        "preferences_url": "http://x/preferences/",
    }
    en = email_render(template="email/mention", context=context, language="en")
    assert en.subject == "al&ce mentioned you in #lobby"
    assert "<b>hi</b>" in en.text and "&lt;b&gt;hi&lt;/b&gt;" in en.html and "<b>hi</b>" not in en.html
    assert "Hello <bob>," in en.text and "Hello &lt;bob&gt;," in en.html
    ja = email_render(template="email/mention", context=context, language="ja")
    assert ja.subject == "al&ce さんが #lobby であなたについて言及しました" and "配信停止" in ja.html
