"""Drafting an email: render it for one recipient, in their language, with the
unsubscribe link in both parts and the RFC 8058 headers.

The templates `email/base.html` and `email/footer.txt` (this app's) frame every
email; chat and blog keep the templates of their own kinds, which extend them.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from .links import absolute_url, unsubscribe_url
from .outbox import OutboxDraft
from .preferences import Recipient


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def email_render(*, template: str, context: dict[str, Any], language: str) -> Rendered:
    """Render `<template>_subject.txt`, `<template>.txt` and `<template>.html` in
    `language`. The HTML template autoescapes user content; the text ones don't."""
    with translation.override(language):
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        text = render_to_string(f"{template}.txt", context)
        html = render_to_string(f"{template}.html", context)
    return Rendered(subject=subject, text=text, html=html)


def email_draft(
    *,
    recipient: Recipient,
    kind: str,
    key: str,
    template: str,
    context: dict[str, Any],
    quoted_user_ids: Iterable[int | None] = (),
) -> OutboxDraft:
    """The email of `template` for one recipient, ready to queue. `quoted_user_ids`: the
    users whose words it quotes, so that erasing one of them cancels it while pending."""
    link = unsubscribe_url(user_id=recipient.user_id, kind=kind)
    context = {
        **context,
        "recipient": recipient,
        "unsubscribe_url": link,
        "preferences_url": absolute_url(reverse("preferences")),
        "site_url": settings.SITE_URL,
    }
    rendered = email_render(template=template, context=context, language=recipient.language)
    return OutboxDraft(
        recipient_id=recipient.user_id,
        to_address=recipient.email,
        kind=kind,
        key=key,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        language=recipient.language,
        headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        quoted_user_ids=frozenset(uid for uid in quoted_user_ids if uid is not None),
    )
