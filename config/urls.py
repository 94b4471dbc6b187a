"""URL routes of the HTTP side."""

from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from notifications.views import preferences_page, unsubscribe_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["chat"]), name="javascript-catalog"),
    path("blog/", include("blog.urls")),
    path("preferences/", preferences_page, name="preferences"),
    path("unsubscribe/<str:token>/", unsubscribe_view, name="unsubscribe"),
    path("", include("chat.urls")),
]
