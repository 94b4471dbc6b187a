"""The /preferences/ page and the one-click unsubscribe view (RFC 8058).

An unsubscribe link needs no sign-in. GET shows a confirmation page; POST
switches that kind off — the confirmation form and the mail client's one-click
`List-Unsubscribe=One-Click` POST alike (CSRF-exempt: the signature is the
credential, and the action only ever turns email off).
"""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt

from .forms import PreferencesForm
from .preferences import preferences_get, preferences_unsubscribe, preferences_update
from .unsubscribe import unsubscribe_token_read


@login_required
def preferences_page(request: HttpRequest) -> HttpResponse:
    """GET shows the user's preferences; POST saves them."""
    user_id = int(request.user.pk or 0)  # signed in: login_required
    prefs = preferences_get(user_id=user_id)
    form = PreferencesForm(request.POST or None, instance=prefs)
    if request.method == "POST" and form.is_valid():
        preferences_update(user_id=user_id, **form.cleaned_data)
        messages.success(request, _("Your preferences were saved."))
        return redirect("preferences")
    return render(request, "notifications/preferences.html", {"form": form})


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
        return render(request, "notifications/unsubscribe_done.html", {"kind": kind})
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return render(request, "notifications/unsubscribe_confirm.html", {"kind": kind, "token": token})
