"""Finding @mentions in message text (no database)."""

import pytest

from chat.mentions import mentioned_usernames


@pytest.mark.parametrize(
    "text, names",
    [
        ("hi @bob", {"bob"}),
        ("@alice and @bob.", {"alice", "bob"}),
        ("@bob, @bob!", {"bob"}),
        ("mail bob@example.com", set()),
        ("@first.last-1 @u_2 @ja太郎", {"first.last-1", "u_2", "ja太郎"}),
        ("@@bob @ alone", set()),
        ("no mentions here", set()),
    ],
)
def test_mentioned_usernames(text, names):
    assert mentioned_usernames(text) == names
