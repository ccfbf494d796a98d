"""The FastAPI demo in real headless Chromium: what it shows, checked and photographed.

The demo runs with its documented command (uvicorn on 127.0.0.1, in a subprocess, its
state in a temporary directory). Each page is checked for what it must show and for the
basics of accessibility (``lang``, one ``h1``, a label on every input, a visible focus
ring), then photographed 1000 pixels wide.

The screenshots go to a temporary directory; with ``SESSIONKIT_SCREENSHOTS=docs/images``
they replace the ones the README and the docs show::

    SESSIONKIT_SCREENSHOTS=docs/images pytest tests/browser/test_demo_screenshots.py
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import sessionkit
from support import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
VIEWPORT = {"width": 1000, "height": 640}
PASSWORD = "correct horse"
SESSION = "session"  # the kit's session cookie name over plain http
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

_UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden])')]
    .filter((input) => input.labels.length === 0).map((input) => input.outerHTML)"""
_FOCUS_RING = """() => { const s = getComputedStyle(document.activeElement);
    return [s.outlineStyle, s.outlineWidth]; }"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The FastAPI demo, started as ``./scripts/demo`` starts it; yields its base URL."""
    state = tmp_path_factory.mktemp("demo-screenshots")
    log = state / "console.log"
    env = {
        **os.environ,
        "SESSIONKIT_DEMO_DIR": str(state),
        "SESSIONKIT_SECRET_KEYS": sessionkit.generate_key(),
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"the demo exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not answer in time:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        stop_process(process, sig=signal.SIGINT, timeout=10, kill_timeout=10)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: ``SESSIONKIT_SCREENSHOTS``, or a temporary directory."""
    chosen = os.environ.get("SESSIONKIT_SCREENSHOTS")
    path = (REPO / chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_page(page: Any, heading: str) -> None:
    """The page's one ``h1`` is ``heading``; it has a language and no unlabelled input."""
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").all_inner_texts() == [heading]
    assert page.evaluate(_UNLABELLED) == []


def photograph(page: Any, shots: Path, name: str) -> None:
    """Save the whole page as ``name``.png, 1000 pixels wide."""
    target = shots / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 0


def device(chromium: Any, agent: str | None = None, **options: Any) -> Any:
    """A new browser context (a device with its own cookies), 1000 pixels wide."""
    extra = {"user_agent": agent} if agent else {}
    return chromium.new_context(viewport=VIEWPORT, **extra, **options)


def log_in(page: Any, demo: str, *, remember: bool = False) -> None:
    page.goto(demo + "/login")
    page.get_by_label("User").fill("demo")
    page.get_by_label("Password").fill(PASSWORD)
    if remember:
        page.get_by_label("Remember me").check()
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(demo + "/app")


def test_home_login_and_the_private_area(chromium: Any, demo: str, shots: Path) -> None:
    context = device(chromium, CHROME_WINDOWS)
    page = context.new_page()

    page.goto(demo + "/")
    check_page(page, "sessionkit demo")
    assert page.get_by_text("Not logged in.").is_visible()
    visitor = page.locator("#visitor-id").inner_text()
    assert visitor.endswith("…")
    assert "visitor" in {c["name"] for c in context.cookies()}, "the home page asked for it"
    photograph(page, shots, "home")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to the content"
    assert page.evaluate(_FOCUS_RING) == ["solid", "3px"]

    page.goto(demo + "/login")
    check_page(page, "Log in")
    before = page.locator("#session-id").inner_text()
    page.get_by_label("User").fill("demo")
    page.get_by_label("Password").focus()
    assert page.evaluate(_FOCUS_RING) == ["solid", "3px"]
    photograph(page, shots, "login")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(demo + "/app")
    check_page(page, "Private area")
    assert page.get_by_text("Hello demo: visit 1 in this session.").is_visible()
    after = page.locator("#session-id").inner_text()
    assert after != before, "logging in gave the session a new id"
    assert f"Earlier: {before}" in page.locator("dd", has=page.locator("#session-id")).inner_text()
    assert re.fullmatch(r"(29|30) min \(.*\)", page.locator("#idle-left").inner_text())
    assert "however active you are" in page.locator("#absolute-end").inner_text()
    assert re.fullmatch(r"\d+ s ago", page.locator("#auth-age").inner_text())
    assert page.locator("#visitor-id").inner_text() == visitor
    photograph(page, shots, "app")

    page.get_by_role("button", name="Log out", exact=True).click()
    page.wait_for_url(demo + "/")
    assert page.get_by_text("Not logged in.").is_visible()
    context.close()


def test_signed_in_elsewhere_and_the_security_events(chromium: Any, demo: str, shots: Path) -> None:
    laptop, phone, forger = (
        device(chromium, CHROME_WINDOWS),
        device(chromium, SAFARI_IPHONE),
        device(chromium),
    )
    on_laptop, on_phone = laptop.new_page(), phone.new_page()
    log_in(on_laptop, demo)
    log_in(on_phone, demo, remember=True)
    [cookie] = [c for c in phone.cookies() if c["name"] == SESSION]
    assert cookie["expires"] - time.time() > 6 * 24 * 3600, "remember me: a week"

    on_laptop.get_by_role("link", name="Where you're signed in").click()
    on_laptop.wait_for_url(demo + "/app/sessions")
    check_page(on_laptop, "Where you're signed in")
    rows = on_laptop.locator("#sessions li")
    assert rows.count() == 2
    assert "this browser" in rows.filter(has_text="Chrome on Windows").inner_text()
    other = rows.filter(has_text="Mobile Safari on iOS")
    assert other.get_by_role("button", name="Sign out Mobile Safari on iOS").is_visible()
    photograph(on_laptop, shots, "sessions")

    # An altered copy of the laptop's cookie, sent from a third browser.
    [value] = [c["value"] for c in laptop.cookies() if c["name"] == SESSION]
    middle = len(value) // 2
    altered = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    forger.add_cookies([{"name": SESSION, "value": altered, "url": demo}])
    forger.new_page().goto(demo + "/app")

    on_laptop.goto(demo + "/app")
    on_laptop.get_by_role("button", name="Log out everywhere").click()
    on_laptop.wait_for_url(demo + "/")
    on_phone.goto(demo + "/app")
    assert on_phone.url == demo + "/login", "the phone's session ended too"

    on_laptop.get_by_role("link", name="Security events").first.click()
    on_laptop.wait_for_url(demo + "/events")
    check_page(on_laptop, "Security events")
    reasons = on_laptop.locator("#events tbody .badge").all_inner_texts()
    assert reasons[:2] == ["revoked", "tampered"], reasons
    assert on_laptop.locator("#events tbody tr").first.locator("td").nth(3).inner_text() == (
        "127.0.0.0"
    ), "the client address, truncated"
    photograph(on_laptop, shots, "events")
    for context in (laptop, phone, forger):
        context.close()


def test_cookies_off_the_gate_and_the_login_explain_cookies(
    browser_context: Callable[..., Any], demo: str, shots: Path
) -> None:
    context = browser_context(cookies=False)
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)

    response = page.goto(demo + "/app")
    assert response.status == 403
    check_page(page, "Cookies are required")
    assert page.get_by_role("heading", name="How to enable cookies").is_visible()
    assert page.get_by_role("link", name="go to the home page").get_attribute("href") == "/"
    photograph(page, shots, "gate")

    page.goto(demo + "/login")
    page.get_by_label("User").fill("demo")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(demo + "/login") as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 403
    check_page(page, "Cookies are needed to log in")
    assert "expired" not in page.content()
    assert context.cookies() == []


def test_global_privacy_control_means_no_visitor_id(chromium: Any, demo: str) -> None:
    context = device(chromium, extra_http_headers={"Sec-GPC": "1"})
    page = context.new_page()
    page.goto(demo + "/")
    assert page.locator("#visitor-id").count() == 0
    assert page.locator("dd .badge").inner_text() == "Sec-GPC: 1"
    assert "honoured: no visitor id" in page.locator("dl").inner_text()
    assert "visitor" not in {c["name"] for c in context.cookies()}
    context.close()
