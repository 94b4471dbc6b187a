"""Hostile text renders as text: in messages, in a username, and a hostile room
name is refused with the refusal shown in words. No dialog ever opens."""

from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.e2e.web.helpers import new_room, post, send, texts, wait_connected

pytestmark = pytest.mark.e2e

PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    "javascript:alert(4)",
]


def test_message_and_username_payloads_render_as_literal_text(server, make_user, open_tab):
    evil, e_cookie = make_user(username="<img src=x onerror=alert(5)>" + new_room()[-6:])
    _, cookie = make_user()
    room = new_room()
    post(evil, room, PAYLOADS[0])
    watcher = open_tab(server, cookie, f"/chat/{room}/")
    wait_connected(watcher.page)
    sender = open_tab(server, e_cookie, f"/chat/{room}/")
    wait_connected(sender.page)
    for payload in PAYLOADS[1:]:
        send(sender.page, payload)
    expect(watcher.page.locator("#log > li[data-seq]")).to_have_count(len(PAYLOADS))

    for tab in (watcher, sender):
        assert texts(tab.page) == PAYLOADS
        authors = tab.page.locator("#log .msg-author").all_text_contents()
        assert authors == [evil.username] * len(PAYLOADS)
        expect(tab.page.locator("#presence li").filter(has_text=evil.username)).to_have_count(1)
        assert tab.page.locator("#log img, #log script, #log svg, #presence img").count() == 0
    expect(sender.page.locator(".whoami")).to_have_text(evil.username)
    sender.page.reload()
    wait_connected(sender.page)
    assert texts(sender.page) == PAYLOADS
    assert watcher.dialogs == [] and sender.dialogs == []


def test_a_hostile_room_name_is_refused_and_the_refusal_is_shown_as_text(server, make_user, open_tab):
    _, cookie = make_user()
    payload = "<img src=x onerror=alert(6)>"
    tab = open_tab(server, cookie, "/")
    tab.page.fill("#id_name", payload)
    tab.page.click("form[action$='/rooms/new/'] button[type=submit]")
    expect(tab.page.locator("#room-name-errors")).to_have_text("A room name is 1 to 64 letters, digits, '_' or '-'.")
    expect(tab.page.locator("#id_name")).to_have_value(payload)
    assert tab.page.locator("main img").count() == 0

    response = tab.page.goto(server.http + "/chat/" + quote(payload) + "/")
    assert response.status == 400
    expect(tab.page.locator("#refusal")).to_have_text("A room name is 1 to 64 letters, digits, '_' or '-'.")
    assert tab.page.locator("main img").count() == 0
    assert tab.dialogs == []
