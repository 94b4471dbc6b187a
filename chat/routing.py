"""WebSocket routes. The room segment is validated by the consumer, so a bad
name gets an `invalid_request` frame and close 4400, never a server error."""

from django.urls import re_path

from .consumers import ChatConsumer, UnknownPathConsumer

websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room>.*)$", ChatConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
