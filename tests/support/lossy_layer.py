"""A channel layer that loses the broadcasts of chosen seqs, as a full channel or a
Redis reconnect would: for proving that sockets still see every event.

The server process that uses it reads two variables of its environment (the test
sets them): LOSSY_DROP_SEQS, the seqs whose `chat.event` group messages are lost
("7,14,21"), and LOSSY_DROP_FILE, where each lost seq is written, one a line, so
that the test reads what this process dropped (and no other process's log).
Every other group message (presence included) goes through untouched.
"""

import os

from channels_redis.pubsub import RedisPubSubChannelLayer


class LossyLayer(RedisPubSubChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drop_seqs = {int(s) for s in os.environ.get("LOSSY_DROP_SEQS", "").split(",") if s.strip()}
        self.drop_file = os.environ.get("LOSSY_DROP_FILE")

    async def group_send(self, group, message):
        if message.get("type") == "chat.event" and message.get("seq") in self.drop_seqs:
            self._record(message["seq"])
            return
        # The pub/sub layer is a proxy to a per-event-loop layer.
        await RedisPubSubChannelLayer.__getattr__(self, "group_send")(group, message)

    def _record(self, seq: int) -> None:
        if self.drop_file:  # a few bytes to a local file: not worth a thread
            with open(self.drop_file, "a") as out:
                out.write(f"{seq}\n")
