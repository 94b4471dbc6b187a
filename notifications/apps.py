from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Who gets which email, and how it is delivered: preferences, unsubscribe
    links, drafting, the outbox and its sender. chat and blog import it; it
    imports neither."""

    name = "notifications"
