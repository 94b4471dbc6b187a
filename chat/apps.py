from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        from . import events, signals  # noqa: F401  (events registers the chat event types)

        signals.connect()
