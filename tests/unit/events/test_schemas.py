"""Event type registry: validation and upcasting of old versions (no database)."""

import pytest

from events.schemas import EventType, SchemaError, register, upcast, validate_text


def test_upcast_applies_each_step_in_order():
    register(
        EventType(
            name="test.thing.happened",
            version=3,
            validate=lambda d: d,
            upcasters={1: lambda d: {**d, "b": 1}, 2: lambda d: {**d, "c": d["b"] + 1}},
        )
    )
    assert upcast("test.thing.happened", 1, {"a": 0}) == {"a": 0, "b": 1, "c": 2}
    assert upcast("test.thing.happened", 3, {"a": 0}) == {"a": 0}


def test_unknown_type_is_a_schema_error():
    with pytest.raises(SchemaError):
        upcast("no.such.type", 1, {})


@pytest.mark.parametrize("value", ["", "  ", None, 3, "a\x00", "\udc00", "x" * 11])
def test_validate_text_refuses(value):
    with pytest.raises(SchemaError):
        validate_text(value, field_name="message", max_chars=10)


def test_validate_text_accepts_unicode():
    assert validate_text("こんにちは!", field_name="message", max_chars=10) == "こんにちは!"
