"""Erasure without app names in the event store: `events_erase_texts(actor_id,
types)` scrubs the actor's events of the types it is given (the registered
personal-text types, see events.schemas and events.services.actor_erase), and
the immutability trigger lets through, under the transaction-local
`events.erasure` flag, only the replacement of a row's data by its erased form
with every other column unchanged, whatever its type.

The trigger no longer restricts the type: it cannot know the registry, which
lives in Python. What keeps an erasure honest is `verify_log`, which accepts an
erased row only for a registered personal-text type whose actor's erasure is
recorded in the log. The one-argument function of migration 0004 is dropped, so
nothing can still erase by chat's old type pattern.
"""

import importlib

from django.db import migrations

_0004 = importlib.import_module("events.migrations.0004_hash_chain_and_erasure")


def _changed(sql: str, old: str, new: str) -> str:
    assert old in sql, old
    return sql.replace(old, new)


# 0004's trigger function without its one chat-specific line.
REFUSE_CHANGE = _changed(_0004.REFUSE_CHANGE, "       AND OLD.type LIKE 'chat.message.%'\n", "")
# 0004's erase function, the types it scrubs now a parameter:
#   events_erase_texts(p_actor_id bigint, p_types text[]) ... WHERE actor_id = p_actor_id AND type = ANY(p_types) ...
ERASE_TEXTS = _changed(
    _changed(_0004.ERASE_TEXTS, "(p_actor_id bigint)", "(p_actor_id bigint, p_types text[])"),
    "type LIKE 'chat.message.%'",
    "type = ANY(p_types)",
)

FORWARD = "DROP FUNCTION events_erase_texts(bigint);" + REFUSE_CHANGE + ERASE_TEXTS
BACKWARD = "DROP FUNCTION events_erase_texts(bigint, text[]);" + _0004.REFUSE_CHANGE + _0004.ERASE_TEXTS


class Migration(migrations.Migration):
    dependencies = [("events", "0006_outboxemail_to_notifications")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
