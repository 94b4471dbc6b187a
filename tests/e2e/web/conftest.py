"""Browser fixtures: a real Chromium (Playwright, sync API) against real daphne.

Static files: with DEBUG off whitenoise serves only what `collectstatic` put in
STATIC_ROOT, as in production. So this directory's servers get their own
STATIC_ROOT (DJANGO_STATIC_ROOT), collected once per session into a temp dir:
the tests exercise the production path (collected, compressed files) without
touching the developer's staticfiles/ or depending on whether `make run` ran.

Playwright's sync API keeps its event loop running in the test's thread, which
makes Django refuse ORM calls there and asyncio.run fail. While a browser is
open, DJANGO_ALLOW_ASYNC_UNSAFE is set in the test process only (the loop is
Playwright's and is blocked while the test's own code runs; the servers get it
cleared), and WebSocket scenarios run in a thread of their own (`in_thread`).
Browsers live per module, so no other test directory ever sees that loop.
"""

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.servers import ROOT, Daphne, server_env

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "artifacts"
# Servers never inherit the test process's permission to run the ORM inside an event loop,
# and need nothing from tests/support on their path (its celery.py would shadow the package).
SERVER_ENV = {"DJANGO_ALLOW_ASYNC_UNSAFE": "", "PYTHONPATH": str(ROOT)}


def in_thread(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion in a fresh thread with its own event loop."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.fixture(scope="session", autouse=True)
def _on_the_test_database(db_settings) -> None:
    # pytest-django creates the test database only when a collected test uses `db`
    # (or the django_db mark); these tests commit through `committed`, so run alone
    # they would write to DATABASE_URL's own database. Refuse that loudly.
    assert db_settings["NAME"].startswith("test_"), (
        f"not on a test database ({db_settings['NAME']}): run these tests together with a test that uses `db`"
    )


@pytest.fixture(scope="session")
def web_static(tmp_path_factory, db_settings) -> Path:
    root = tmp_path_factory.mktemp("static")
    env = server_env(db_settings, DJANGO_STATIC_ROOT=str(root), **SERVER_ENV)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    return root


@pytest.fixture(scope="session")
def server(db_settings, web_static) -> Iterator[Daphne]:
    """This directory's daphne: the shared one, but serving the collected static files."""
    daphne = Daphne(env=server_env(db_settings, DJANGO_STATIC_ROOT=str(web_static), **SERVER_ENV)).start()
    yield daphne
    daphne.stop()


@pytest.fixture
def start_server(start_server, web_static) -> Callable[..., Daphne]:
    def start(**overrides: str) -> Daphne:
        return start_server(**{"DJANGO_STATIC_ROOT": str(web_static), **SERVER_ENV, **overrides})

    return start


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@dataclass
class Tab:
    """A signed-in page, with what it reported: dialogs opened and console errors (CSP violations land there)."""

    page: Page
    context: BrowserContext
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def open_tab(browser) -> Iterator[Callable[..., Tab]]:
    """`open_tab(server, cookie, path, locale=...)`: a new browser context signed in by its session cookie."""
    contexts: list[BrowserContext] = []

    def open_(server: Daphne, cookie: str | None, path: str = "/", *, locale: str = "en-US") -> Tab:
        context = browser.new_context(locale=locale, viewport={"width": 1100, "height": 720})
        contexts.append(context)
        if cookie:
            name, _, value = cookie.partition("=")
            context.add_cookies([{"name": name, "value": value, "url": server.http}])
        page = context.new_page()
        page.set_default_timeout(10_000)
        tab = Tab(page=page, context=context)
        page.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: tab.errors.append(str(e)))
        page.goto(server.http + path)
        return tab

    yield open_
    for context in contexts:
        context.close()
