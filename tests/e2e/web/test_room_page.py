"""The room page in a real Chromium: two people chatting, history, scrollback,
sending with acks and errors, read markers and unread counts, room creation."""

import time
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from chat.models import Membership, Room
from chat.services import room_join
from events.models import Event
from tests.e2e.web.conftest import ARTIFACTS, in_thread
from tests.e2e.web.helpers import new_room, post, send, seqs, texts, wait_connected
from tests.support.ratewindow import fresh_window
from tests.support.ws import ChatClient

pytestmark = pytest.mark.e2e

# The snippet of the seed's page, exactly: a bare socket printing "username: message".
SEED_SNIPPET = """
const chatSocket = new WebSocket('ws://' + window.location.host + '/ws/chat/' + roomName + '/');
chatSocket.onmessage = function(e) {
    const data = JSON.parse(e.data);
    console.log(data.username + ": " + data.message);
};
"""


def test_two_users_see_each_others_messages_within_a_second(server, make_user, open_tab):
    (alice, a_cookie), (bob, b_cookie) = make_user(), make_user()
    room = new_room()
    a = open_tab(server, a_cookie, f"/chat/{room}/")
    wait_connected(a.page)
    b = open_tab(server, b_cookie, f"/chat/{room}/")
    wait_connected(b.page)

    send(a.page, "hello bob")
    seen = b.page.locator("#log > li[data-seq]").last
    expect(seen.locator(".msg-text")).to_have_text("hello bob", timeout=1000)
    expect(seen.locator(".msg-author")).to_have_text(alice.username)
    mine = a.page.locator("#log > li").last
    expect(mine).to_have_attribute("data-state", "sent")

    send(b.page, "hi alice")
    seen = a.page.locator("#log > li[data-seq]").last
    expect(seen.locator(".msg-text")).to_have_text("hi alice", timeout=1000)
    expect(seen.locator(".msg-author")).to_have_text(bob.username)
    assert seqs(a.page) == seqs(b.page) == [1, 2]

    # The artifact a person can look at: artifacts/room-page.png.
    post(bob, room, "Has everyone seen the new build?", "Looks good here — shipping it after lunch.")
    send(a.page, "Line one\nline two of the same message")
    expect(a.page.locator("#log > li[data-seq]")).to_have_count(5)
    ARTIFACTS.mkdir(exist_ok=True)
    a.page.screenshot(path=str(ARTIFACTS / "room-page.png"))
    assert a.dialogs == [] and a.errors == [] and b.errors == []


def test_reload_shows_history_in_order_and_scroll_up_prepends_older_pages(server, make_user, open_tab):
    alice, cookie = make_user()
    room = new_room()
    post(alice, room, *[f"message {n}" for n in range(1, 131)])
    tab = open_tab(server, cookie, f"/chat/{room}/")
    wait_connected(tab.page)
    log = tab.page.locator("#log > li[data-seq]")
    expect(log).to_have_count(50)  # the replay: CHAT_HISTORY_LIMIT
    assert seqs(tab.page) == list(range(81, 131))

    tab.page.reload()
    wait_connected(tab.page)
    expect(log).to_have_count(50)
    assert seqs(tab.page) == list(range(81, 131))
    assert texts(tab.page) == [f"message {n}" for n in range(81, 131)]

    scroller = tab.page.locator("#log-scroll")
    scroller.evaluate("e => { e.scrollTop = 0; }")
    expect(log).to_have_count(100)
    scroller.evaluate("e => { e.scrollTop = 0; }")
    expect(log).to_have_count(130)
    expect(tab.page.locator("#log-top")).to_be_visible()
    assert seqs(tab.page) == list(range(1, 131))
    assert texts(tab.page) == [f"message {n}" for n in range(1, 131)]
    scroller.evaluate("e => { e.scrollTop = 0; }")  # nothing older: no request, no duplicates
    assert seqs(tab.page) == list(range(1, 131))
    assert tab.errors == []


def test_the_seed_snippet_still_works_in_the_page(server, make_user, open_tab):
    (alice, a_cookie), (bob, b_cookie) = make_user(), make_user()
    room = new_room()
    a = open_tab(server, a_cookie, f"/chat/{room}/")
    b = open_tab(server, b_cookie, f"/chat/{room}/")
    wait_connected(b.page)
    printed: list[str] = []
    a.page.on("console", lambda m: printed.append(m.text) if m.type == "log" else None)
    a.page.evaluate(
        "roomName => { " + SEED_SNIPPET + " window.chatSocket = chatSocket; }",
        room,
    )
    a.page.wait_for_function("() => window.chatSocket.readyState === WebSocket.OPEN")
    a.page.evaluate("chatSocket.send(JSON.stringify({'message': 'hello from the seed'}))")
    send(b.page, "hello seed")
    expect(b.page.locator("#log .msg-text").filter(has_text="hello from the seed")).to_have_count(1)
    a.page.wait_for_function("n => document.querySelectorAll('#log > li[data-seq]').length === n", arg=2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and f"{bob.username}: hello seed" not in printed:
        a.page.wait_for_timeout(50)
    assert f"{alice.username}: hello from the seed" in printed
    assert f"{bob.username}: hello seed" in printed


def test_an_error_frame_is_shown_in_words_and_the_text_can_be_resent(start_server, make_user, open_tab):
    limited = start_server(CHAT_RATE_LIMIT="2/4s")
    alice, cookie = make_user()
    room = new_room()
    tab = open_tab(limited, cookie, f"/chat/{room}/")
    wait_connected(tab.page)
    # 5 sends within one window (they start with 3 s of it left): the last 3 are refused.
    fresh_window(4, need=3)
    for n in range(5):
        send(tab.page, f"burst {n}")
    expect(tab.page.locator("#log > li[data-state='failed']")).to_have_count(3)
    expect(tab.page.locator("#log > li[data-state='sent']")).to_have_count(2)
    expect(tab.page.locator("#composer-error")).to_contain_text("You are sending messages too fast")
    # The text is not lost: it is back in the input, and its message waits with a retry button.
    kept = tab.page.locator("#message-input").input_value()
    failed = tab.page.locator("#log > li[data-state='failed']").filter(has_text=kept)
    expect(failed).to_have_count(1)
    client_id = failed.get_attribute("data-client-id")
    failed = tab.page.locator(f"#log > li[data-client-id='{client_id}']")
    expect(failed.locator(".msg-state")).to_have_text("not sent")

    # Retry until the window lets it through; the same client_id goes each time.
    deadline = time.monotonic() + 15
    while failed.get_attribute("data-state") != "sent" and time.monotonic() < deadline:
        if failed.get_attribute("data-state") == "failed":
            failed.locator(".msg-retry").click()
        tab.page.wait_for_timeout(300)
    expect(failed).to_have_attribute("data-state", "sent")
    stream = Room.objects.get(name=room).stream_id
    assert Event.objects.filter(stream_id=stream, client_id=client_id).count() == 1
    assert tab.page.locator("#log > li[data-seq]").count() == Event.objects.filter(stream_id=stream).count()


def test_read_position_drives_the_unread_counts_of_the_room_list(server, make_user, open_tab):
    (alice, a_cookie), (bob, _) = make_user(), make_user()
    room = new_room()
    room_join(user=alice, name=room)
    post(bob, room, "one", "two", "three")
    tab = open_tab(server, a_cookie, "/")
    row = tab.page.locator(f".room-row[data-room='{room}']")
    expect(row.locator(".badge-unread")).to_have_text("3 unread")

    row.locator("a").click()
    wait_connected(tab.page)
    expect(tab.page.locator("#log > li[data-seq]")).to_have_count(3)
    membership = Membership.objects.get(room__name=room, user=alice)
    deadline = time.monotonic() + 10
    while membership.last_read_seq < 3 and time.monotonic() < deadline:
        tab.page.wait_for_timeout(100)
        membership.refresh_from_db()
    assert membership.last_read_seq == 3

    post(bob, room, "four")
    tab.page.goto(server.http + "/")
    expect(row.locator(".badge-unread")).to_have_text("1 unread")


def test_a_room_is_created_from_the_form_and_unicode_names_work_in_the_url(server, make_user, open_tab):
    alice, cookie = make_user()
    room = "部屋-" + new_room()[-6:]
    tab = open_tab(server, cookie, "/")
    tab.page.fill("#id_name", room)
    tab.page.click("form[action$='/rooms/new/'] button[type=submit]")
    expect(tab.page).to_have_url(server.http + "/chat/" + quote(room) + "/")
    expect(tab.page.locator("#room-name")).to_have_text(room)
    wait_connected(tab.page)
    send(tab.page, "最初のメッセージ")
    expect(tab.page.locator("#log > li[data-seq='1'] .msg-text")).to_have_text("最初のメッセージ")
    assert Room.objects.get(name=room).is_private is False

    tab.page.goto(server.http + "/")
    expect(tab.page.locator(f".room-row[data-room='{room}'] .room-name")).to_have_text(room)


def test_edits_and_redactions_show_on_the_message_live_and_after_reload(server, make_user, open_tab):
    (_, a_cookie), (_, b_cookie) = make_user(), make_user()
    room = new_room()
    tab = open_tab(server, a_cookie, f"/chat/{room}/")
    wait_connected(tab.page)

    async def corrections():
        bob = await ChatClient.connect(server.ws, room, cookie=b_cookie)
        await bob.history()
        assert (await bob.post("teh message"))["seq"] == 1
        edited = await bob.command({"type": "chat.edit", "target_seq": 1, "message": "the message"})
        assert (await bob.post("oops, wrong room"))["seq"] == 3
        redacted = await bob.command({"type": "chat.redact", "target_seq": 3, "reason": "wrong room"})
        await bob.close()
        # Each correction is an event of its own, acked with its own seq.
        assert (edited["type"], edited["seq"], edited["duplicate"]) == ("ack", 2, False), edited
        assert (redacted["type"], redacted["seq"], redacted["duplicate"]) == ("ack", 4, False), redacted

    in_thread(corrections())
    for page_state in ("live", "reloaded"):
        first, third = tab.page.locator("#log > li[data-seq='1']"), tab.page.locator("#log > li[data-seq='3']")
        expect(first.locator(".msg-text"), page_state).to_have_text("the message")
        expect(first.locator(".msg-edited"), page_state).to_have_text("(edited)")
        expect(third.locator(".msg-text"), page_state).to_have_text("This message was deleted.")
        assert tab.page.locator("#log > li[data-seq]").count() == 2  # corrections are not messages
        tab.page.reload()
        wait_connected(tab.page)
