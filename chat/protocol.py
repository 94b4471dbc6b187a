"""Parsing of what clients send: frames and the connect query string.

Pure functions: they turn wire input into commands or raise ChatError with the
code PROTOCOL.md gives for it. Nothing here touches the database.
"""

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings

from config.params import BadParam, int_clean, last
from events.schemas import SchemaError, event_type

from .errors import ChatError
from .events import MESSAGE_EDITED, MESSAGE_POSTED, MESSAGE_REDACTED


@dataclass(frozen=True)
class Post:
    text: str
    client_id: str | None


@dataclass(frozen=True)
class Read:
    seq: int


@dataclass(frozen=True)
class Edit:
    target_seq: int
    text: str
    client_id: str | None


@dataclass(frozen=True)
class Redact:
    target_seq: int
    reason: str
    client_id: str | None


@dataclass(frozen=True)
class JoinParams:
    since: int | None
    history: int


class _NotANumber(ValueError):
    """A number JSON does not have; the message names it."""


def _no_constant(name: str) -> float:
    raise _NotANumber(f"{name} is not a JSON number.")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotANumber(f"{text} is out of the range of numbers.")
    return number


# Strict JSON: Python's parser takes NaN and Infinity, and turns 1e999 into inf.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)
# No frame of this protocol nests deeper than 2; refuse deep ones at a fixed
# depth rather than wherever the parser's C recursion limit happens to be.
MAX_DEPTH = 32


def _depth_over(value: object, limit: int) -> bool:
    """Whether containers nest deeper than `limit` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _json(text_data: str) -> object:
    too_deep = ChatError("invalid_json", f"The frame is nested more than {MAX_DEPTH} levels deep.")
    try:
        value = _DECODER.decode(text_data)
    except RecursionError:
        raise too_deep from None
    except _NotANumber as exc:
        raise ChatError("invalid_json", f"The frame is not valid JSON: {exc}") from None
    except ValueError:
        raise ChatError("invalid_json", "The frame is not valid JSON.") from None
    # Counting brackets is cheap; only a frame with that many containers is walked.
    if text_data.count("[") + text_data.count("{") > MAX_DEPTH and _depth_over(value, MAX_DEPTH):
        raise too_deep
    return value


def parse_frame(text_data: str | None, bytes_data: bytes | None) -> Post | Read | Edit | Redact:
    max_bytes = settings.CHAT_FRAME_MAX_BYTES
    if text_data is None:
        raise ChatError("too_large", "Binary frames are not accepted; send JSON text.")
    # A str of n characters encodes to at most 4n bytes: skip the encode when it can't matter.
    if len(text_data) * 4 > max_bytes and len(text_data.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ChatError("too_large", f"The frame is larger than {max_bytes} bytes.")
    frame = _json(text_data)
    if not isinstance(frame, dict):
        raise ChatError("invalid_json", "The frame must be a JSON object.")
    client_id = _client_id(frame)
    kind = frame.get("type", "chat.message")
    if kind == "chat.message":
        data = _validated(MESSAGE_POSTED, {"message": frame.get("message")}, client_id)
        return Post(text=data["message"], client_id=client_id)
    if kind == "chat.edit":
        data = _validated(
            MESSAGE_EDITED, {"target_seq": frame.get("target_seq"), "message": frame.get("message")}, client_id
        )
        return Edit(target_seq=data["target_seq"], text=data["message"], client_id=client_id)
    if kind == "chat.redact":
        data = _validated(
            MESSAGE_REDACTED, {"target_seq": frame.get("target_seq"), "reason": frame.get("reason")}, client_id
        )
        return Redact(target_seq=data["target_seq"], reason=data["reason"], client_id=client_id)
    if kind == "read":
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ChatError("invalid_message", "'seq' must be a non-negative integer.", client_id=client_id)
        return Read(seq=seq)
    raise ChatError(
        "unknown_type", f"'type' {str(kind)[:64]!r} is not a frame type the server handles.", client_id=client_id
    )


def _validated(type: str, data: dict[str, Any], client_id: str | None) -> dict[str, Any]:
    """The event type's own schema checks the frame: one definition for input and log."""
    try:
        return event_type(type).validate(data)
    except SchemaError as exc:
        raise ChatError("invalid_message", str(exc), client_id=client_id) from None


def _client_id(frame: dict[str, object]) -> str | None:
    value = frame.get("client_id")
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isprintable():
        raise ChatError("invalid_message", "'client_id' must be a string of 1 to 64 printable characters.")
    return value


def parse_join(query_string: bytes) -> JoinParams:
    try:
        query = parse_qs(query_string.decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ChatError("invalid_request", "The query string is not valid.") from None
    since = _non_negative(query, "since")
    history = _non_negative(query, "history")
    limit = settings.CHAT_HISTORY_LIMIT if history is None else min(history, settings.CHAT_HISTORY_MAX)
    return JoinParams(since=since, history=limit)


def _non_negative(query: dict[str, list[str]], name: str) -> int | None:
    """The last value of a join parameter by the shared rule (config.params); present but blank is refused."""
    value = last(query, name)
    if value is None:
        return None
    try:
        return int_clean(name, value)
    except BadParam:
        raise ChatError("invalid_request", f"'{name}' must be a non-negative integer.") from None
