"""Refusals with the stable codes of PROTOCOL.md and a sentence for a person."""

# Close codes for refusals that end the socket.
CLOSE_CODES = {"unauthenticated": 4401, "forbidden": 4403, "invalid_request": 4400}


class ChatError(Exception):
    def __init__(
        self,
        code: str,
        detail: str,
        *,
        client_id: str | None = None,
        retry_after: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_id = client_id
        # Seconds the client should wait (with jitter) before it tries again.
        self.retry_after = retry_after
        # Whom it refused, when known (for the log; never sent).
        self.user_id = user_id

    @property
    def close_code(self) -> int | None:
        return CLOSE_CODES.get(self.code)

    def as_frame(self) -> dict[str, object]:
        frame: dict[str, object] = {
            "type": "error",
            "code": self.code,
            "detail": self.detail,
            "client_id": self.client_id,
        }
        if self.retry_after is not None:
            frame["retry_after"] = self.retry_after
        return frame
