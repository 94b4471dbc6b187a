"""Presence's pure parts: entries to usernames, and the frame."""

import json

from chat.presence import member_encode, presence_frame, users_from_members


def test_users_are_distinct_and_sorted_whatever_the_number_of_tabs():
    members = [
        member_encode(username="bob", process="p1").encode(),
        member_encode(username="alice", process="p2").encode(),
        member_encode(username="bob", process="p3"),
        member_encode(username="雑談さん", process="p4"),
    ]
    assert users_from_members(members) == ["alice", "bob", "雑談さん"]


def test_a_username_with_separators_survives_the_encoding():
    odd = 'a "quoted", name\n'
    assert users_from_members([member_encode(username=odd, process="x")]) == [odd]


def test_unreadable_entries_are_ignored():
    assert users_from_members([b"not json", b"[]", member_encode(username="ok", process="c").encode()]) == ["ok"]


def test_presence_frame_shape():
    frame = json.loads(presence_frame(room="雑談", users=["alice", "bob"], limit=10))
    assert frame == {"type": "presence", "room": "雑談", "users": ["alice", "bob"], "count": 2}


def test_a_long_list_is_cut_but_counted():
    frame = json.loads(presence_frame(room="big", users=[f"u{n:03}" for n in range(500)], limit=3))
    assert frame["users"] == ["u000", "u001", "u002"] and frame["count"] == 500
