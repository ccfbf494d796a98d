"""A real uvicorn server on 127.0.0.1 and a real headless Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import running_uvicorn

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network: no background traffic, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_TIMEOUT = 10.0  # seconds for a server to start, and to stop


@dataclass
class Server:
    """A uvicorn server in a thread; ``url`` is its base address."""

    url: str


@pytest.fixture
def serve() -> Iterator[Callable[[Any], Server]]:
    """``serve(app)``: ``app`` under uvicorn in a thread until the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda app: Server(
            stack.enter_context(running_uvicorn(app, lifespan="auto", timeout=SERVER_TIMEOUT))
        )


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright's sync API runs an event loop while it is open: keep it to one module."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (./scripts/test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser_context(playwright: Any, tmp_path: Path) -> Callable[..., Any]:
    """Open a persistent Chromium profile; ``cookies=False`` blocks cookies in it."""
    contexts: list[Any] = []

    def open_context(*, cookies: bool = True) -> Any:
        profile = tmp_path / f"profile-{len(contexts)}"
        (profile / "Default").mkdir(parents=True)
        setting = 1 if cookies else 2
        prefs = {"profile": {"default_content_setting_values": {"cookies": setting}}}
        (profile / "Default" / "Preferences").write_text(json.dumps(prefs))
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def chromium(playwright: Any) -> Iterator[Any]:
    """One headless Chromium for a module: ``chromium.new_context()`` is a fresh device.

    A context has its own cookie jar and may have its own ``user_agent``; contexts of one
    browser start far faster than persistent profiles.
    """
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()
