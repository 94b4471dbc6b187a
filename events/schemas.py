"""Event types: a past-tense name, a schema version, a validator and upcasters.

Apps declare their types here with `register`; the append service validates
every event against its type, and readers call `upcast` so old rows always
reach the code in the current shape. A type also says whether its data holds
text a person wrote (erased by `events.services.actor_erase`) and whether it
records an erasure (`events.verify` accepts erased rows by it): the event store
itself knows no app's type names.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Data = dict[str, Any]


class SchemaError(ValueError):
    """Data that does not fit its event type; the message is for a person."""


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    validate: Callable[[Data], Data]
    # upcasters[v] turns data of version v into version v + 1.
    upcasters: dict[int, Callable[[Data], Data]] = field(default_factory=dict)
    # Its data holds text its actor wrote: an erasure of the actor scrubs it.
    personal_text: bool = False
    # It records an erasure; its data is {"user_id": <the erased actor's id>}.
    records_erasure: bool = False


_registry: dict[str, EventType] = {}


def register(event_type: EventType) -> EventType:
    _registry[event_type.name] = event_type
    return event_type


def event_type(name: str) -> EventType:
    try:
        return _registry[name]
    except KeyError:
        raise SchemaError(f"Unknown event type {name!r}.") from None


def personal_text_types() -> list[str]:
    """The registered types whose data an erasure of their actor scrubs."""
    return sorted(name for name, t in _registry.items() if t.personal_text)


def erasure_types() -> list[str]:
    """The registered types that record an erasure."""
    return sorted(name for name, t in _registry.items() if t.records_erasure)


def upcast(name: str, version: int, data: Data) -> Data:
    """Bring stored data of any older version to the current one."""
    current = event_type(name)
    while version < current.version:
        data = current.upcasters[version](data)
        version += 1
    return data


def validate_text(value: object, *, field_name: str, max_chars: int, blank: bool = False) -> str:
    """A string without NUL or lone surrogates, at most max_chars long; not blank unless `blank`."""
    if not isinstance(value, str):
        raise SchemaError(f"'{field_name}' must be a string.")
    if not blank and not value.strip():
        raise SchemaError(f"'{field_name}' must not be empty.")
    if len(value) > max_chars:
        raise SchemaError(f"'{field_name}' is {len(value)} characters long; the limit is {max_chars}.")
    if "\x00" in value:
        raise SchemaError(f"'{field_name}' must not contain a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SchemaError(f"'{field_name}' contains an invalid character (a lone surrogate).") from None
    return value
