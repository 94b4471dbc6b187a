"""Search and permalinks in a real Chromium: search from the room list and from a
room, click a result, land on the highlighted message, scroll both ways from it."""

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from chat.services import message_redact, room_join
from tests.e2e.web.conftest import ARTIFACTS
from tests.e2e.web.helpers import new_room, post, seqs

pytestmark = pytest.mark.e2e


def target(page: Page):
    return page.locator("#log > li.msg-target")


def scroll(page: Page, where: str) -> None:
    page.locator("#log-scroll").evaluate("(e, where) => { e.scrollTop = where === 'top' ? 0 : e.scrollHeight; }", where)


def test_search_click_a_result_and_scroll_both_ways_from_it(server, make_user, open_tab):
    alice, cookie = make_user()
    room, w = new_room("find"), f"rel{uuid.uuid4().hex[:8]}"
    post(alice, room, *[f"filler {n}" for n in range(1, 150)])
    post(alice, room, f"The {w} ships on Friday <b>not</b> today")  # seq 150
    post(alice, room, *[f"later {n}" for n in range(151, 301)])

    tab = open_tab(server, cookie, "/")
    tab.page.fill("#search-box-q", w)
    tab.page.press("#search-box-q", "Enter")
    hit = tab.page.locator("#search-results .search-hit")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text(w)
    expect(hit.locator(".search-text")).to_have_text(f"The {w} ships on Friday <b>not</b> today")
    expect(hit.locator(".search-room")).to_have_text(room)
    ARTIFACTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=str(ARTIFACTS / "search-page.png"))

    hit.locator("a").click()
    tab.page.wait_for_url(f"**/chat/{room}/?at=150")
    landed = target(tab.page)
    expect(landed).to_have_attribute("data-seq", "150")
    expect(landed.locator(".msg-text")).to_have_text(f"The {w} ships on Friday <b>not</b> today")
    expect(landed).to_be_in_viewport()
    tab.page.screenshot(path=str(ARTIFACTS / "permalink.png"))
    shown = seqs(tab.page)
    assert shown == list(range(shown[0], shown[-1] + 1)) and shown[0] < 150 < shown[-1] < 300
    expect(tab.page.locator("#jump-latest")).to_be_visible()

    # Up: older pages until the beginning of the room.
    for _ in range(10):
        if seqs(tab.page)[0] == 1:
            break
        first = seqs(tab.page)[0]
        scroll(tab.page, "top")
        expect(tab.page.locator("#log > li[data-seq]").first).not_to_have_attribute("data-seq", str(first))
    expect(tab.page.locator("#log-top")).to_have_text("This is the beginning of the room.")

    # Down: newer pages until the head, then the socket takes over live.
    for _ in range(10):
        if seqs(tab.page)[-1] == 300:
            break
        last = seqs(tab.page)[-1]
        scroll(tab.page, "bottom")
        expect(tab.page.locator("#log > li[data-seq]").last).not_to_have_attribute("data-seq", str(last))
    expect(tab.page.locator("#status")).to_have_attribute("data-state", "connected")
    assert seqs(tab.page) == list(range(1, 301))
    expect(tab.page.locator("#jump-latest")).to_be_hidden()
    post(alice, room, "live after the permalink")
    expect(tab.page.locator("#log > li[data-seq]").last.locator(".msg-text")).to_have_text("live after the permalink")
    assert seqs(tab.page) == list(range(1, 302))
    assert tab.errors == [] and tab.dialogs == []


def test_room_search_box_finds_japanese_in_this_room_only(server, make_user, open_tab):
    alice, cookie = make_user()
    here, there = new_room("jp"), new_room("jp")
    post(alice, there, "別の部屋の会議")
    post(alice, here, "おはよう", "明日の会議は十時から", "雑談はこちら")
    tab = open_tab(server, cookie, f"/chat/{here}/")
    expect(tab.page.locator("#status")).to_have_attribute("data-state", "connected")
    tab.page.fill("#search-box-q", "会議")
    tab.page.press("#search-box-q", "Enter")
    hit = tab.page.locator("#search-results .search-hit")
    expect(hit).to_have_count(1)
    expect(hit.locator(".search-text")).to_have_text("明日の会議は十時から")
    expect(hit.locator("mark")).to_have_text("会議")
    hit.locator("a").click()
    expect(target(tab.page)).to_have_attribute("data-seq", "2")
    # The whole room fits in one page: it goes live at once.
    expect(tab.page.locator("#status")).to_have_attribute("data-state", "connected")
    assert seqs(tab.page) == [1, 2, 3]
    assert tab.errors == []


def test_a_link_to_a_redacted_message_opens_at_its_place_showing_it_removed(server, make_user, open_tab):
    alice, cookie = make_user()
    room = new_room("gone")
    post(alice, room, "one", "two", "regrettable", "four")
    message_redact(access=room_join(user=alice, name=room), target_seq=3, reason=None, client_id=None)
    tab = open_tab(server, cookie, f"/chat/{room}/?at=3")
    landed = target(tab.page)
    expect(landed).to_have_attribute("data-seq", "3")
    expect(landed.locator(".msg-text")).to_have_text("This message was deleted.")
    expect(landed).to_have_class(re.compile(r"\bmsg-redacted\b"))
    assert "regrettable" not in tab.page.content()


def test_a_permalink_into_a_private_room_shows_a_non_member_nothing(server, make_user, open_tab):
    from chat.models import Room

    owner, _ = make_user()
    outsider, cookie = make_user()
    room = new_room("priv")
    post(owner, room, "private words")
    Room.objects.filter(name=room).update(is_private=True)
    tab = open_tab(server, cookie, f"/chat/{room}/?at=1")
    expect(tab.page.locator("body")).to_contain_text("This room is private and you are not a member.")
    assert "private words" not in tab.page.content()
    assert tab.page.locator("#log").count() == 0
