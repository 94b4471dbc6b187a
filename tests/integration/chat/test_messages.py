"""chat.messages: the one rule for what a message says now, in its Python and SQL forms."""

import json

from django.db import connection
from django.utils import timezone

from chat.digest import room_digests
from chat.erasure import user_erase
from chat.messages import STATE_COLUMNS_SQL, STATE_JOIN_SQL, VISIBLE_SQL, corrected_from_row, current_text
from chat.models import Room
from chat.selectors import current_texts, events_payloads
from chat.services import message_edit, message_post, message_redact, room_join
from events.models import Event
from events.schemas import upcast
from tests.factories import UserFactory


def _sql_form(stream_id: int, seqs: list[int]) -> dict[int, tuple[bool, object]]:
    """{seq: (VISIBLE_SQL, current_text of the SQL row)}, the way chat.digest reads them."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.seq, e.type, e.schema_version, e.data, e.actor_id, {STATE_COLUMNS_SQL}, {VISIBLE_SQL}"
            f" FROM events_event e {STATE_JOIN_SQL} WHERE e.stream_id = %s AND e.seq = ANY(%s)",
            [stream_id, seqs],
        )
        rows = cursor.fetchall()
    found = {}
    for seq, type_, version, data, actor_id, text, edit_count, redacted_at, visible in rows:
        data = json.loads(data) if isinstance(data, str) else data
        corrected = corrected_from_row(text, edit_count, redacted_at)
        found[seq] = (
            visible,
            current_text(seq=seq, author_id=actor_id, data=upcast(type_, version, data), corrected=corrected),
        )
    return found


def test_python_and_sql_forms_agree_on_posted_edited_redacted_and_erased(room):
    name, a = room
    plain = message_post(access=a["alice"], text="plain", client_id=None)
    edited = message_post(access=a["alice"], text="draft", client_id=None)
    message_edit(access=a["alice"], target_seq=edited.seq, text="final", client_id=None)
    redacted = message_post(access=a["bob"], text="oops", client_id=None)
    message_redact(access=a["mod"], target_seq=redacted.seq, reason="", client_id=None)
    leaver = UserFactory()
    erased = message_post(access=room_join(user=leaver, name=name), text="forget me", client_id=None)
    user_erase(user_id=leaver.pk)
    stream_id = a["alice"].stream_id
    seqs = [plain.seq, edited.seq, redacted.seq, erased.seq]

    python = {seq: current for (_, seq), current in current_texts(messages=[(stream_id, s) for s in seqs]).items()}
    assert {seq: current.shown for seq, current in python.items()} == {
        plain.seq: "plain",
        edited.seq: "final",
        redacted.seq: None,
        erased.seq: None,
    }
    assert [(python[s].edited, python[s].redacted, python[s].erased) for s in seqs] == [
        (False, False, False),
        (True, False, False),
        (False, True, False),
        (False, True, True),  # erasure also marks the read model's row redacted
    ]

    sql = _sql_form(stream_id, seqs)
    assert {seq: visible for seq, (visible, _) in sql.items()} == {s: not python[s].hidden for s in seqs}
    assert {seq: current for seq, (_, current) in sql.items()} == python

    # The readers built on it: scrollback frames and the digest (which filters in SQL).
    events = list(Event.objects.filter(stream_id=stream_id, seq__in=seqs).select_related("actor").order_by("seq"))
    payloads = events_payloads(stream_id=stream_id, events=events, room=name)
    assert [(p["message"], p.get("redacted", False)) for p in payloads] == [
        (python[s].text, python[s].hidden) for s in seqs
    ]
    day = timezone.localdate(events[0].created_at)
    digest = room_digests(day=day)[Room.objects.get(name=name).pk]
    assert [line["line"] for line in digest.latest] == ["plain", "final"]
