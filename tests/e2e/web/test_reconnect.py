"""Connection loss in the browser: the server is SIGKILLed mid-conversation and
restarted on the same port; the page shows it, reconnects with ?since= and the
log continues with no gap and no duplicate, pending messages resent once."""

import pytest
from playwright.sync_api import expect

from chat.models import Room
from events.models import Event
from tests.e2e.web.helpers import new_room, send, seqs, texts, wait_connected

pytestmark = pytest.mark.e2e


def test_page_survives_a_server_kill_and_shows_what_was_said_meanwhile_exactly_once(start_server, make_user, open_tab):
    first, second = start_server(), start_server()
    (_, a_cookie), (_, b_cookie) = make_user(), make_user()
    room = new_room()
    a = open_tab(first, a_cookie, f"/chat/{room}/")
    wait_connected(a.page)
    b = open_tab(second, b_cookie, f"/chat/{room}/")
    wait_connected(b.page)
    send(a.page, "before the outage")
    expect(b.page.locator("#log > li[data-seq='1'] .msg-text")).to_have_text("before the outage")

    first.kill()
    expect(a.page.locator("#status")).to_have_attribute("data-state", "disconnected")
    expect(a.page.locator("#status")).to_contain_text("Disconnected")
    send(b.page, "said during the outage")
    expect(b.page.locator("#log > li[data-seq='2']")).to_have_attribute("data-state", "sent")
    send(a.page, "typed while offline")
    offline = a.page.locator("#log > li").last
    expect(offline).to_have_attribute("data-state", "pending")

    first.start()
    wait_connected(a.page)
    expect(offline).to_have_attribute("data-state", "sent", timeout=15_000)
    expect(b.page.locator("#log > li[data-seq='3'] .msg-text")).to_have_text("typed while offline")
    assert texts(a.page) == texts(b.page) == ["before the outage", "said during the outage", "typed while offline"]
    assert seqs(a.page) == seqs(b.page) == [1, 2, 3]
    # The resent message was written once, whatever the number of attempts.
    assert Event.objects.filter(stream_id=Room.objects.get(name=room).stream_id).count() == 3

    send(b.page, "after the restart")
    expect(a.page.locator("#log > li[data-seq='4'] .msg-text")).to_have_text("after the restart")
    assert seqs(a.page) == [1, 2, 3, 4]

    a.page.reload()
    wait_connected(a.page)
    expect(a.page.locator("#log > li[data-seq]")).to_have_count(4)
    assert texts(a.page) == [
        "before the outage",
        "said during the outage",
        "typed while offline",
        "after the restart",
    ]
    assert a.dialogs == []
