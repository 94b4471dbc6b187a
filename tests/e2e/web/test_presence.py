"""Who is here, across two daphne processes; a SIGKILLed process's sockets expire."""

import pytest
from playwright.sync_api import expect

from tests.e2e.web.helpers import new_room, wait_connected

pytestmark = pytest.mark.e2e

FAST_PRESENCE = {"CHAT_PRESENCE_TTL_SECONDS": "2", "CHAT_PRESENCE_REFRESH_SECONDS": "0.5"}


def present(tab):
    return tab.page.locator("#presence li")


def test_presence_spans_processes_and_expires_after_a_kill(start_server, make_user, open_tab):
    first, second = start_server(**FAST_PRESENCE), start_server(**FAST_PRESENCE)
    (alice, a_cookie), (bob, b_cookie) = make_user(), make_user()
    room = new_room()
    both = sorted([alice.username, bob.username])
    a = open_tab(first, a_cookie, f"/chat/{room}/")
    wait_connected(a.page)
    expect(present(a)).to_have_text([alice.username])

    b = open_tab(second, b_cookie, f"/chat/{room}/")
    wait_connected(b.page)
    expect(present(a)).to_have_text(both)
    expect(present(b)).to_have_text(both)

    # A leave is heard at once.
    b.page.goto(second.http + "/")
    expect(present(a)).to_have_text([alice.username])
    b.page.goto(second.http + f"/chat/{room}/")
    wait_connected(b.page)
    expect(present(a)).to_have_text(both)

    # A killed process says nothing; its entries expire (TTL 2 s) and the room hears it.
    second.kill()
    expect(present(a)).to_have_text([alice.username], timeout=10_000)
    expect(b.page.locator("#status")).to_have_attribute("data-state", "disconnected")
