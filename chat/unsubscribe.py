"""One-click unsubscribe (RFC 8058) and the parts every email shares.

Each email carries a signed link naming the user and the kind of email; no
sign-in is needed to use it. GET shows a confirmation page; POST switches that
kind off — the confirmation form and the mail client's one-click
`List-Unsubscribe=One-Click` POST alike (CSRF-exempt: the signature is the
credential, and the action only ever turns email off).
"""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from events.outbox import OutboxDraft, email_render

from .preferences import KIND_FIELDS, Recipient, preferences_unsubscribe

_SALT = "chat.unsubscribe"


def absolute_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def unsubscribe_token(*, user_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "k": kind}, salt=_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[int, str]:
    """(user_id, kind) of a valid token; raises signing.BadSignature otherwise."""
    data = signing.loads(token, salt=_SALT)
    if not isinstance(data, dict) or data.get("k") not in KIND_FIELDS or not isinstance(data.get("u"), int):
        raise signing.BadSignature("Malformed unsubscribe token.")
    return data["u"], data["k"]


def unsubscribe_url(*, user_id: int, kind: str) -> str:
    return absolute_url(reverse("unsubscribe", args=[unsubscribe_token(user_id=user_id, kind=kind)]))


def email_draft(*, recipient: Recipient, kind: str, key: str, template: str, context: dict[str, Any]) -> OutboxDraft:
    """Render an email for one recipient in their language, with the unsubscribe
    link in both parts and the RFC 8058 headers."""
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
    )


@csrf_exempt
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET: confirm; POST: unsubscribe (one click from the mail client, or the form)."""
    try:
        user_id, kind = unsubscribe_token_read(token)
    except signing.BadSignature:
        raise Http404("This unsubscribe link is not valid.") from None
    if not get_user_model().objects.filter(pk=user_id).exists():
        raise Http404("This unsubscribe link is not valid.")
    if request.method == "POST":
        preferences_unsubscribe(user_id=user_id, kind=kind)
        return render(request, "chat/unsubscribe_done.html", {"kind": kind})
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return render(request, "chat/unsubscribe_confirm.html", {"kind": kind, "token": token})
