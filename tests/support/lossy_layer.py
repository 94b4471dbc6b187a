"""A channel layer that loses every 7th group message, as a full channel or a
Redis reconnect would: for proving that sockets still see every event."""

import logging

from channels_redis.pubsub import RedisPubSubChannelLayer

logger = logging.getLogger(__name__)


class LossyLayer(RedisPubSubChannelLayer):
    every = 7

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.group_sends = 0

    async def group_send(self, group, message):
        self.group_sends += 1
        if self.group_sends % self.every == 0:
            logger.warning("LOSSY LAYER DROPPED group message seq=%s", message.get("seq"))
            return
        # The pub/sub layer is a proxy to a per-event-loop layer.
        await RedisPubSubChannelLayer.__getattr__(self, "group_send")(group, message)
