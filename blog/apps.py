from django.apps import AppConfig


class BlogConfig(AppConfig):
    name = "blog"

    def ready(self) -> None:
        from . import events  # noqa: F401  (registers the blog event types)
