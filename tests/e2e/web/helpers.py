"""Helpers of the browser tests: rooms, messages through the service, waits on the page."""

import uuid

from playwright.sync_api import Page, expect

from chat.services import message_post, room_join


def new_room(prefix: str = "web") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def post(user, room: str, *texts: str) -> None:
    """Messages appended through the service, as the product does."""
    access = room_join(user=user, name=room)
    for text in texts:
        message_post(access=access, text=text, client_id=None)


def wait_connected(page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")


def send(page: Page, text: str) -> None:
    box = page.locator("#message-input")
    box.fill(text)
    box.press("Enter")


def seqs(page: Page) -> list[int]:
    return [int(s) for s in page.locator("#log > li[data-seq]").evaluate_all("els => els.map(e => e.dataset.seq)")]


def texts(page: Page) -> list[str]:
    return page.locator("#log .msg-text").all_text_contents()
