"""chat.layer: the room group and the broadcast of a committed event."""

import logging

from channels.layers import InMemoryChannelLayer

from chat.layer import EVENT, broadcast, room_group


def test_a_room_group_is_named_from_the_id():
    assert room_group(7) == "chat.room.7"


async def test_broadcast_sends_the_event_to_the_room_group():
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add(room_group(7), channel)
    await broadcast(room_id=7, seq=3, frame='{"seq": 3}', layer=layer)
    assert await layer.receive(channel) == {"type": EVENT, "seq": 3, "frame": '{"seq": 3}'}


async def test_a_failed_broadcast_is_logged_not_raised(caplog):
    class Down(InMemoryChannelLayer):
        async def group_send(self, group, message):
            raise OSError("channel layer down")

    with caplog.at_level(logging.WARNING, logger="chat.layer"):
        await broadcast(room_id=7, seq=3, frame="{}", layer=Down())
    assert "broadcast failed room_id=7 seq=3" in caplog.text
