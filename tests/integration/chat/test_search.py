"""Search (GET /api/search, /search/) on a real PostgreSQL: current text only,
who may read what, Japanese, filters, paging, highlighting and refusals."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from chat.erasure import user_erase
from chat.messages import EDITED_SQL, EDITED_TEXT_SQL, POSTED_TEXT_SQL, STATE_JOIN_SQL, VISIBLE_SQL
from chat.models import Membership, Room
from chat.search import SearchQuery, messages_search, search_terms
from chat.selectors import current_texts
from chat.services import message_edit, message_post, message_redact, room_join
from tests.factories import UserFactory


def word() -> str:
    """A word no other test (or earlier run) has written."""
    return f"zq{uuid.uuid4().hex[:10]}"


def new_room() -> str:
    return f"search-{uuid.uuid4().hex[:10]}"


def search(client: Client, **params) -> dict:
    response = client.get("/api/search", params)
    assert response.status_code == 200, response.content
    return response.json()


def found(client: Client, **params) -> list[tuple[str, int, str]]:
    return [(r["room"], r["seq"], r["message"]) for r in search(client, **params)["results"]]


def test_finds_a_message_with_its_room_seq_author_time_and_permalink(db, client_for):
    alice = UserFactory()
    room, w = new_room(), word()
    access = room_join(user=alice, name=room)
    message_post(access=access, text="nothing here", client_id=None)
    posted = message_post(access=access, text=f"The {w.upper()} is ready", client_id=None)
    body = search(client_for(alice), q=w)
    assert body["next"] is None
    [hit] = body["results"]
    assert hit["room"] == room and hit["seq"] == posted.seq and hit["id"] == posted.id
    assert hit["username"] == alice.username and hit["message"] == f"The {w.upper()} is ready"
    assert hit["ts"].endswith("Z") and hit["edited"] is False
    assert hit["highlight"] == f"The <mark>{w.upper()}</mark> is ready"
    assert hit["url"] == f"/chat/{room}/?at={posted.seq}"


def test_an_edited_message_is_found_by_its_new_text_only(db, client_for):
    alice = UserFactory()
    old, new = word(), word()
    access = room_join(user=alice, name=new_room())
    posted = message_post(access=access, text=f"draft {old}", client_id=None)
    message_edit(access=access, target_seq=posted.seq, text=f"final {new}", client_id=None)
    client = client_for(alice)
    assert found(client, q=old) == []
    [hit] = search(client, q=new)["results"]
    assert hit["seq"] == posted.seq and hit["message"] == f"final {new}" and hit["edited"] is True
    # Edited back: the first text is current again, the second is not.
    message_edit(access=access, target_seq=posted.seq, text=f"draft {old}", client_id=None)
    assert [seq for _, seq, _ in found(client, q=old)] == [posted.seq]
    assert found(client, q=new) == []


def test_a_redacted_or_edited_then_redacted_message_is_found_by_nothing(db, client_for):
    alice, mod = UserFactory(), UserFactory()
    first, second, edited = word(), word(), word()
    name = new_room()
    access = room_join(user=alice, name=name)
    moderator = room_join(user=mod, name=name)
    Membership.objects.filter(room__name=name, user=mod).update(is_moderator=True)
    one = message_post(access=access, text=f"{first} {second}", client_id=None)
    two = message_post(access=access, text=f"{first} again", client_id=None)
    message_edit(access=access, target_seq=two.seq, text=f"{edited} again", client_id=None)
    message_redact(access=moderator, target_seq=one.seq, reason="spam", client_id=None)
    message_redact(access=access, target_seq=two.seq, reason=None, client_id=None)
    client = client_for(alice)
    for q in (first, second, edited, "again", f"{first} {second}"):
        assert found(client, q=q, room=name) == [], q


def test_search_stops_finding_a_message_the_moment_its_redaction_commits(committed):
    alice = UserFactory()
    w = word()
    access = room_join(user=alice, name=new_room())
    posted = message_post(access=access, text=f"secret {w}", client_id=None)
    query = SearchQuery(terms=search_terms(w))

    def elsewhere() -> list[int]:
        """The search from another connection, as another request would run it."""
        seqs: list[int] = []

        def run() -> None:
            try:
                seqs.extend(hit.seq for hit in messages_search(user_id=alice.pk, query=query).hits)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return seqs

    assert elsewhere() == [posted.seq]
    with transaction.atomic():
        message_redact(access=access, target_seq=posted.seq, reason=None, client_id=None)
        assert messages_search(user_id=alice.pk, query=query).hits == []  # inside the transaction
        assert elsewhere() == [posted.seq]  # not committed yet: others still see the message
    assert elsewhere() == []


def test_an_erased_authors_messages_are_found_by_nothing(db, client_for):
    alice, bob = UserFactory(), UserFactory()
    w, edited = word(), word()
    name = new_room()
    a = room_join(user=alice, name=name)
    b = room_join(user=bob, name=name)
    message_post(access=a, text=f"{w} from alice", client_id=None)
    posted = message_post(access=a, text="typo", client_id=None)
    message_edit(access=a, target_seq=posted.seq, text=f"{edited} fixed", client_id=None)
    kept = message_post(access=b, text=f"{w} from bob", client_id=None)
    user_erase(user_id=alice.pk)
    client = client_for(bob)
    assert found(client, q=w) == [(name, kept.seq, f"{w} from bob")]
    assert found(client, q=edited) == []
    assert found(client, q=w, author=alice.username) == []


def test_the_column_search_matches_holds_chat_messages_current_text(db, room, client_for):
    """Search matches each visible message in the column chat.messages says holds
    its current text, and shows what current_text says: posted, edited, edited
    back, redacted and erased messages alike."""
    name, a = room
    words = {kind: word() for kind in ("plain", "draft", "final", "back", "redacted", "erased")}
    plain = message_post(access=a["alice"], text=f"{words['plain']} plain", client_id=None)
    edited = message_post(access=a["alice"], text=f"{words['draft']} draft", client_id=None)
    message_edit(access=a["alice"], target_seq=edited.seq, text=f"{words['final']} final", client_id=None)
    back = message_post(access=a["alice"], text=f"{words['back']} first", client_id=None)
    message_edit(access=a["alice"], target_seq=back.seq, text="second", client_id=None)
    message_edit(access=a["alice"], target_seq=back.seq, text=f"{words['back']} first", client_id=None)
    redacted = message_post(access=a["bob"], text=f"{words['redacted']} oops", client_id=None)
    message_redact(access=a["mod"], target_seq=redacted.seq, reason="", client_id=None)
    leaver = UserFactory()
    erased = message_post(access=room_join(user=leaver, name=name), text=f"{words['erased']} bye", client_id=None)
    user_erase(user_id=leaver.pk)
    stream_id = a["alice"].stream_id
    seqs = [plain.seq, edited.seq, back.seq, redacted.seq, erased.seq]
    python = {seq: current for (_, seq), current in current_texts(messages=[(stream_id, s) for s in seqs]).items()}

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.seq, CASE WHEN {EDITED_SQL} THEN {EDITED_TEXT_SQL} ELSE {POSTED_TEXT_SQL} END, {VISIBLE_SQL}"
            f" FROM events_event e {STATE_JOIN_SQL} WHERE e.stream_id = %s AND e.seq = ANY(%s)",
            [stream_id, seqs],
        )
        sql = {seq: text if visible else None for seq, text, visible in cursor.fetchall()}
    assert sql == {seq: current.shown for seq, current in python.items()}

    client = client_for(UserFactory())
    shown = {
        kind: [(r["seq"], r["message"], r["edited"]) for r in search(client, q=w, room=name)["results"]]
        for kind, w in words.items()
    }
    assert shown == {
        "plain": [(plain.seq, python[plain.seq].text, False)],
        "draft": [],
        "final": [(edited.seq, python[edited.seq].text, True)],
        "back": [(back.seq, python[back.seq].text, True)],
        "redacted": [],
        "erased": [],
    }


def test_private_rooms_are_searched_only_by_their_members(db, client_for):
    member, outsider = UserFactory(), UserFactory()
    w = word()
    public, private = new_room(), new_room()
    message_post(access=room_join(user=member, name=public), text=f"{w} in public", client_id=None)
    access = room_join(user=member, name=private)
    Room.objects.filter(name=private).update(is_private=True)
    secret = message_post(access=access, text=f"{w} in private", client_id=None)
    assert {r for r, _, _ in found(client_for(member), q=w)} == {public, private}
    outside = client_for(outsider)
    assert [r for r, _, _ in found(outside, q=w)] == [public]
    response = outside.get("/api/search", {"q": w, "room": private})
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    # Leaving the room takes its history out of the person's searches.
    Membership.objects.filter(room__name=private, user=member).delete()
    assert [r for r, _, _ in found(client_for(member), q=w)] == [public]
    assert secret.seq == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("会議", {"meeting", "mixed"}),
        ("雑談", {"chat"}),
        ("勉強", {"mixed"}),
        ("python勉強会", {"mixed"}),
        ("打ち合わせ", {"meeting"}),
        ("QA", {"qa"}),
        ("議は", {"meeting"}),
        ("会議 python", {"mixed"}),
        ("明日", set()),
        ("DB", None),
    ],
)
def test_japanese_and_mixed_script_queries(db, client_for, query, expected):
    alice = UserFactory()
    name = new_room()
    access = room_join(user=alice, name=name)
    texts = {
        "meeting": "今日の会議は打ち合わせです",
        "chat": "雑談はこちらへ",
        "mixed": "Python勉強会の会議室",
        "qa": "the QA team signed off",
        "quality": "quality is not qa-less... qatar",
        "db": "the db, dbms and DBA",
    }
    by_seq = {message_post(access=access, text=t, client_id=None).seq: key for key, t in texts.items()}
    got = {by_seq[seq] for _, seq, _ in found(client_for(alice), q=query, room=name)}
    if query == "QA":
        # A 2-letter Latin query is a whole word: "qa-less" has it, "qatar" and "quality" do not.
        expected = {"qa", "quality"}
    if query == "DB":
        expected = {"db"}
    assert got == expected


def test_highlight_escapes_the_text_and_marks_every_word(db, client_for):
    alice = UserFactory()
    w = word()
    access = room_join(user=alice, name=new_room())
    message_post(access=access, text=f"<b>{w}</b> & <script>会議</script> {w.upper()}", client_id=None)
    [hit] = search(client_for(alice), q=f"{w} 会議")["results"]
    assert hit["highlight"] == (
        f"&lt;b&gt;<mark>{w}</mark>&lt;/b&gt; &amp; &lt;script&gt;<mark>会議</mark>&lt;/script&gt; <mark>{w.upper()}</mark>"
    )


def test_every_word_must_match_and_quotes_make_a_phrase(db, client_for):
    alice = UserFactory()
    a, b = word(), word()
    name = new_room()
    access = room_join(user=alice, name=name)
    both = message_post(access=access, text=f"{a} then {b}", client_id=None)
    message_post(access=access, text=f"{a} only", client_id=None)
    client = client_for(alice)
    assert [seq for _, seq, _ in found(client, q=f"{b} {a}")] == [both.seq]
    assert found(client, q=f'"{b} then {a}"') == []
    assert [seq for _, seq, _ in found(client, q=f'"{a} then {b}"')] == [both.seq]
    assert found(client, q="100%_\\ off", room=name) == []


def test_filters_newest_first_and_paging(db, client_for):
    alice, bob = UserFactory(), UserFactory()
    w = word()
    one, two = new_room(), new_room()
    a1, b1 = room_join(user=alice, name=one), room_join(user=bob, name=one)
    a2 = room_join(user=alice, name=two)
    seqs = [
        (one, message_post(access=a1, text=f"{w} 1", client_id=None).seq),
        (one, message_post(access=b1, text=f"{w} 2", client_id=None).seq),
        (two, message_post(access=a2, text=f"{w} 3", client_id=None).seq),
        (one, message_post(access=a1, text=f"{w} 4", client_id=None).seq),
    ]
    client = client_for(alice)
    assert [(r, s) for r, s, _ in found(client, q=w)] == seqs[::-1]
    assert [(r, s) for r, s, _ in found(client, q=w, room=one)] == [seqs[3], seqs[1], seqs[0]]
    assert [(r, s) for r, s, _ in found(client, q=w, author=bob.username)] == [seqs[1]]
    assert found(client, q=w, author="nobody-" + w) == []
    page = search(client, q=w, limit=3)
    assert [(r["room"], r["seq"]) for r in page["results"]] == seqs[:0:-1] and page["next"]
    rest = search(client, q=w, limit=3, cursor=page["next"])
    assert [(r["room"], r["seq"]) for r in rest["results"]] == [seqs[0]] and rest["next"] is None
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert len(found(client, q=w, before=tomorrow, after=timezone.localdate().isoformat())) == 4
    assert found(client, q=w, after=tomorrow) == []
    assert found(client, q=w, before=timezone.localdate().isoformat()) == []


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"q": ""}, 400, "invalid_request"),
        ({"q": "a"}, 400, "invalid_request"),
        ({"q": "会"}, 400, "invalid_request"),
        ({"q": "..."}, 400, "invalid_request"),
        ({"q": "x" * 201}, 400, "invalid_request"),
        ({"q": "hello", "limit": "ten"}, 400, "invalid_request"),
        ({"q": "hello", "cursor": "-1"}, 400, "invalid_request"),
        ({"q": "hello", "before": "yesterday"}, 400, "invalid_request"),
        ({"q": "hello", "after": "2026-13-45"}, 400, "invalid_request"),
        ({"q": "hello", "room": "bad room!"}, 400, "invalid_request"),
        ({"q": "hello", "room": "no-such-room-anywhere"}, 404, "not_found"),
    ],
)
def test_bad_parameters_get_a_code_and_a_sentence(db, client_for, params, status, code):
    response = client_for(UserFactory()).get("/api/search", params)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == code and body["detail"].endswith(".")


def test_anonymous_search_is_refused_as_json(db):
    response = Client().get("/api/search", {"q": "hello"})
    assert response.status_code == 401
    assert response.json() == {"error": "unauthenticated", "detail": "Sign in to search."}


def test_search_page_shows_escaped_highlighted_results_linking_to_the_message(db, client_for):
    alice = UserFactory()
    w = word()
    name = new_room()
    posted = message_post(access=room_join(user=alice, name=name), text=f"<i>{w}</i>", client_id=None)
    client = client_for(alice)
    page = client.get("/search/", {"q": w, "room": name}).content.decode()
    assert f'href="/chat/{name}/?at={posted.seq}"' in page
    assert f"&lt;i&gt;<mark>{w}</mark>&lt;/i&gt;" in page
    assert "<i>" not in page
    refused = client.get("/search/", {"q": "a"})
    assert refused.status_code == 400 and "at least 3 letters" in refused.content.decode()
    assert 'action="/search/"' in client.get("/").content.decode()
    assert Client().get("/search/", {"q": w}).status_code == 302


def test_results_do_not_depend_on_the_window_size(db, client_for, monkeypatch):
    """The log (or one room) is searched newest first in windows of positions
    (seqs): tiny windows, so that every page spans many, give the same pages."""
    alice = UserFactory()
    w = word()
    name = new_room()
    access = room_join(user=alice, name=name)
    for n in range(12):
        message_post(access=access, text=f"{w} {n}" if n % 3 else f"other {n}", client_id=None)
    client = client_for(alice)

    def pages(**scope) -> list[list[int]]:
        seen, cursor = [], None
        while True:
            body = search(client, q=w, limit=3, **scope, **({"cursor": cursor} if cursor else {}))
            seen.append([r["seq"] for r in body["results"]])
            if not (cursor := body["next"]):
                return seen

    expected = [[12, 11, 9], [8, 6, 5], [3, 2]]
    assert pages() == pages(room=name) == expected
    monkeypatch.setattr("chat.search.FIRST_WINDOW", 1)
    monkeypatch.setattr("chat.search.WINDOW_GROWTH", 2)
    assert pages() == pages(room=name) == expected
