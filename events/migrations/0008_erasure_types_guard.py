"""The immutability trigger checks the type again, still without app names.

Migration 0007 dropped the trigger's type check: a session that set the
transaction-local `events.erasure` flag could scrub a row of any type. Now
`events_erase_texts(actor_id, types)` also sets the transaction-local
`events.erasure_types` to the types it was given (an array literal, so a name
round-trips exactly), and the trigger lets the scrubbing UPDATE through only
for a row whose type is one of them. An UPDATE by hand under the flag alone is
refused; the types come from the caller (events.services.actor_erase passes the
registry's personal-text types), and `verify_log` still accepts an erased row
only for a registered personal-text type whose actor's erasure is recorded.
"""

import importlib

from django.db import migrations

_0007 = importlib.import_module("events.migrations.0007_erase_texts_by_type")
_changed = _0007._changed

_FLAG = "       AND current_setting('events.erasure', true) = 'on'\n"
_TYPES = "COALESCE(NULLIF(current_setting('events.erasure_types', true), ''), '{}')::text[]"

# 0007's trigger function, the row's type required to be among those being erased.
REFUSE_CHANGE = _changed(_0007.REFUSE_CHANGE, _FLAG, _FLAG + f"       AND OLD.type = ANY({_TYPES})\n")
# 0007's erase function (replaced in place: same signature), setting and clearing the types with the flag.
ERASE_TEXTS = _changed(
    _changed(
        _changed(_0007.ERASE_TEXTS, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
        "    PERFORM set_config('events.erasure', 'on', true);\n",
        "    PERFORM set_config('events.erasure', 'on', true);\n"
        "    PERFORM set_config('events.erasure_types', p_types::text, true);\n",
    ),
    "    PERFORM set_config('events.erasure', 'off', true);\n",
    "    PERFORM set_config('events.erasure', 'off', true);\n    PERFORM set_config('events.erasure_types', '', true);\n",
)

FORWARD = REFUSE_CHANGE + ERASE_TEXTS
BACKWARD = _0007.REFUSE_CHANGE + _changed(_0007.ERASE_TEXTS, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


class Migration(migrations.Migration):
    dependencies = [("events", "0007_erase_texts_by_type")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
