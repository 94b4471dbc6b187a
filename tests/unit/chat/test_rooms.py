"""Room names and the rate-limit spec (no database)."""

import pytest

from chat.errors import ChatError
from chat.ratelimit import parse_rate
from chat.services import room_name_normalize


@pytest.mark.parametrize("name", ["lobby", "雑談", "a", "x" * 64, "room_1-b", "Ünïcödé"])
def test_valid_room_names(name):
    assert room_name_normalize(name) == name


def test_room_names_are_nfc_normalised():
    assert room_name_normalize("cafe\u0301") == "caf\u00e9"


@pytest.mark.parametrize("name", ["", "x" * 65, "a b", "a/b", "<script>", "a.b", "\x00"])
def test_invalid_room_names(name):
    with pytest.raises(ChatError) as info:
        room_name_normalize(name)
    assert info.value.code == "invalid_request"


def test_rate_spec():
    assert parse_rate("20/10s") == (20, 10.0)
    assert parse_rate("5/1s") == (5, 1.0)
    with pytest.raises(ValueError):
        parse_rate("0/10s")


@pytest.mark.parametrize(
    "name, shown",
    [
        ("evil\u202etxt", "U+202E"),
        ("zero\u200bwidth", "U+200B"),
        ("join\u200der", "U+200D"),
        ("\ufeffbom", "U+FEFF"),
        ("soft\u00adhyphen", "U+00AD"),
    ],
)
def test_invisible_and_direction_characters_are_refused_by_name(name, shown):
    with pytest.raises(ChatError) as info:
        room_name_normalize(name)
    assert info.value.code == "invalid_request"
    assert "invisible or direction-changing" in info.value.detail and shown in info.value.detail
