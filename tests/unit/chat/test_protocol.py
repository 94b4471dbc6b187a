"""Parsing of client frames and join parameters (no database, no socket)."""

import json

import pytest

from chat.errors import ChatError
from chat.protocol import Edit, Post, Read, Redact, parse_frame, parse_join


def code_of(text=None, data=None) -> str:
    with pytest.raises(ChatError) as info:
        parse_frame(text, data)
    return info.value.code


def test_seed_frame_is_a_plain_post():
    assert parse_frame(json.dumps({"message": "hi"}), None) == Post(text="hi", client_id=None)


def test_typed_frame_with_client_id():
    frame = json.dumps({"type": "chat.message", "message": "hi", "client_id": "abc"})
    assert parse_frame(frame, None) == Post(text="hi", client_id="abc")


def test_read_marker():
    assert parse_frame(json.dumps({"type": "read", "seq": 12}), None) == Read(seq=12)


def test_edit_and_redact_frames():
    edit = {"type": "chat.edit", "target_seq": 3, "message": "fixed", "client_id": "e1"}
    assert parse_frame(json.dumps(edit), None) == Edit(target_seq=3, text="fixed", client_id="e1")
    redact = {"type": "chat.redact", "target_seq": 3, "reason": "spam", "client_id": "r1"}
    assert parse_frame(json.dumps(redact), None) == Redact(target_seq=3, reason="spam", client_id="r1")
    # The reason is optional.
    assert parse_frame(json.dumps({"type": "chat.redact", "target_seq": 4}), None) == Redact(4, "", None)


@pytest.mark.parametrize("seq", [-1, "3", 1.5, True, None])
def test_read_marker_needs_a_non_negative_integer(seq):
    assert code_of(json.dumps({"type": "read", "seq": seq})) == "invalid_message"


@pytest.mark.parametrize(
    "text, code",
    [
        ("{", "invalid_json"),
        ('"just a string"', "invalid_json"),
        ("null", "invalid_json"),
        (json.dumps({"message": None}), "invalid_message"),
        (json.dumps({"message": ["a"]}), "invalid_message"),
        (json.dumps({"message": " "}), "invalid_message"),
        (json.dumps({"message": "ok", "client_id": ""}), "invalid_message"),
        (json.dumps({"message": "ok", "client_id": "x" * 65}), "invalid_message"),
        (json.dumps({"message": "ok", "client_id": "bad\nid"}), "invalid_message"),
        (json.dumps({"type": "chat.react", "message": "x"}), "unknown_type"),
        (json.dumps({"type": "chat.edit", "message": "x"}), "invalid_message"),
        (json.dumps({"type": "chat.edit", "target_seq": "1", "message": "x"}), "invalid_message"),
        (json.dumps({"type": "chat.edit", "target_seq": 1, "message": "  "}), "invalid_message"),
        (json.dumps({"type": "chat.redact", "target_seq": 0}), "invalid_message"),
        (json.dumps({"type": "chat.redact", "target_seq": 1, "reason": "r" * 501}), "invalid_message"),
        (json.dumps({"type": "chat.redact", "target_seq": True}), "invalid_message"),
    ],
)
def test_refusals(text, code):
    assert code_of(text) == code


def test_binary_frames_are_refused():
    assert code_of(None, b"{}") == "too_large"


def test_frame_size_is_counted_in_bytes(settings):
    settings.CHAT_FRAME_MAX_BYTES = 100
    settings.CHAT_MESSAGE_MAX_CHARS = 1000
    # 30 three-byte characters: 30 chars but over 90 bytes with the JSON around them.
    assert code_of(json.dumps({"message": "雑" * 30}, ensure_ascii=False)) == "too_large"
    assert parse_frame(json.dumps({"message": "a" * 30}), None).text == "a" * 30


def test_error_carries_the_client_id_when_known():
    with pytest.raises(ChatError) as info:
        parse_frame(json.dumps({"message": "", "client_id": "k9"}), None)
    assert info.value.client_id == "k9"
    assert info.value.as_frame()["client_id"] == "k9"


def test_join_defaults_and_limits(settings):
    settings.CHAT_HISTORY_LIMIT = 50
    settings.CHAT_HISTORY_MAX = 500
    assert parse_join(b"").since is None
    assert parse_join(b"").history == 50
    assert parse_join(b"history=5&since=7").history == 5
    assert parse_join(b"since=7").since == 7
    assert parse_join(b"history=100000").history == 500


@pytest.mark.parametrize("query", [b"since=-1", b"since=x", b"history=1e3", b"since=", b"since=\xff"])
def test_join_refuses_malformed_values(query):
    with pytest.raises(ChatError) as info:
        parse_join(query)
    assert info.value.code == "invalid_request" and info.value.close_code == 4400


@pytest.mark.parametrize(
    "text, named",
    [
        ('{"message": NaN}', "NaN is not a JSON number"),
        ('{"message": "x", "n": Infinity}', "Infinity is not a JSON number"),
        ('{"message": "x", "n": -Infinity}', "-Infinity is not a JSON number"),
        ('{"message": "x", "n": 1e999}', "1e999 is out of the range of numbers"),
        ('{"message": "x", "n": -1e999}', "-1e999 is out of the range of numbers"),
        ("[" * 10_000 + "]" * 10_000, "nested more than 32 levels"),
        ('{"message": "x", "a": ' + "[" * 32 + "]" * 32 + "}", "nested more than 32 levels"),
        ('{"message": "x", "a": ' + '{"b":' * 32 + "1" + "}" * 32 + "}", "nested more than 32 levels"),
    ],
)
def test_non_finite_numbers_and_deep_nesting_are_invalid_json(text, named):
    with pytest.raises(ChatError) as info:
        parse_frame(text, None)
    assert info.value.code == "invalid_json" and named in info.value.detail


def test_nesting_up_to_the_limit_and_brackets_in_text_pass():
    nested = '{"message": "x", "a": ' + "[" * 31 + "]" * 31 + "}"
    assert parse_frame(nested, None) == Post(text="x", client_id=None)
    brackets = json.dumps({"message": "[{" * 100})
    assert parse_frame(brackets, None) == Post(text="[{" * 100, client_id=None)


def test_finite_floats_and_extra_fields_pass():
    frame = '{"message": "hi", "client_id": "k", "score": 1.5e10, "extra": {"a": [1, 2]}}'
    assert parse_frame(frame, None) == Post(text="hi", client_id="k")
