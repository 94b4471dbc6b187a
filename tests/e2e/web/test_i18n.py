"""The UI speaks the browser's language (Accept-Language) or the one chosen in the selector."""

import pytest
from playwright.sync_api import expect

from tests.e2e.web.helpers import new_room, send

pytestmark = pytest.mark.e2e


def test_japanese_browser_gets_japanese_pages_and_script_strings(server, make_user, open_tab):
    _, cookie = make_user()
    room = new_room()
    tab = open_tab(server, cookie, "/", locale="ja-JP")
    expect(tab.page.locator("html")).to_have_attribute("lang", "ja")
    expect(tab.page.locator("main h1")).to_have_text("ルーム")
    expect(tab.page.locator(".logout-form button")).to_have_text("ログアウト")

    tab.page.goto(server.http + f"/chat/{room}/")
    expect(tab.page.locator("#status")).to_have_text("接続済み")  # from the JavaScript catalog
    expect(tab.page.locator("#log-top")).to_have_text("まだメッセージはありません。あいさつしてみましょう!")
    expect(tab.page.locator("#message-input")).to_have_attribute(
        "placeholder", "メッセージを入力 — Enterで送信、Shift+Enterで改行"
    )
    send(tab.page, "こんにちは")
    expect(tab.page.locator("#log > li[data-seq='1'] .msg-state")).to_have_text("送信済み")


def test_the_language_selector_overrides_the_browser(server, make_user, open_tab):
    _, cookie = make_user()
    tab = open_tab(server, cookie, "/", locale="ja-JP")
    expect(tab.page.locator("main h1")).to_have_text("ルーム")
    tab.page.select_option("#language-select", "en")
    tab.page.click(".lang-form button")
    expect(tab.page.locator("main h1")).to_have_text("Rooms")
    tab.page.goto(server.http + "/")
    expect(tab.page.locator("main h1")).to_have_text("Rooms")
    tab.page.select_option("#language-select", "ja")
    tab.page.click(".lang-form button")
    expect(tab.page.locator("main h1")).to_have_text("ルーム")


def test_sign_in_page_is_translated_and_signs_in(server, make_user, open_tab):
    user, _ = make_user()
    tab = open_tab(server, None, "/", locale="ja-JP")
    expect(tab.page).to_have_url(server.http + "/accounts/login/?next=/")
    expect(tab.page.locator("main h1")).to_have_text("ログイン")
    tab.page.fill("#id_username", user.username)
    tab.page.fill("#id_password", "wrong")
    tab.page.click("main button[type=submit]")
    expect(tab.page.locator("#login-error")).to_have_text(
        "ユーザー名とパスワードが一致しません。もう一度お試しください。"
    )
    tab.page.fill("#id_password", "pw-for-tests")
    tab.page.click("main button[type=submit]")
    expect(tab.page).to_have_url(server.http + "/")
    expect(tab.page.locator(".whoami")).to_have_text(user.username)
    tab.page.click(".logout-form button")
    expect(tab.page).to_have_url(server.http + "/accounts/login/")
