"""Requests through the core in explicit phases, for deterministic interleaving tests.

A :class:`Browser` has one cookie jar shared by all its tabs. ``browser.start()`` opens a
request and loads its store record (what a front end does before the app runs) and
returns a :class:`Flight`; the test then runs app code on it, makes it respond, and
either delivers the response to the jar or loses it. Any number of flights can be in
the air at once, and the test decides the order of every step, so races that a real
server shows one time in a hundred happen here every time.

Importable as ``flows`` (``pythonpath = ["tests"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sessionkit import Session, SessionKit
from sessionkit.exchange import Exchange, HeaderChanges
from sessionkit.families import FamilyRef, Record, Stored
from sessionkit.gate import EarlyResponse
from sessionkit.stores import MemoryStore

Act = Callable[[Session], Any]


def apply_set_cookie(jar: dict[str, str], header: str) -> None:
    """Store or drop one ``Set-Cookie`` in ``jar`` as a browser would."""
    pair, _, attributes = header.partition(";")
    name, _, value = pair.partition("=")
    if "Max-Age=0" in attributes:
        jar.pop(name.strip(), None)
    else:
        jar[name.strip()] = value.strip()


@dataclass
class Flight:
    """One request between its start and the browser receiving (or losing) its response."""

    browser: Browser
    exchange: Exchange
    early: EarlyResponse | None
    response: HeaderChanges | EarlyResponse | None = None
    result: Any = None

    @property
    def session(self) -> Session:
        """The request's session."""
        return self.exchange.session

    def run(self, act: Act) -> Flight:
        """Run app code on the session (the request's handler)."""
        assert self.early is None, f"the request was answered early: {self.early}"
        self.result = act(self.exchange.session)
        return self

    def respond(self) -> Flight:
        """Let the response start: the session is saved and the headers decided."""
        assert self.early is None, f"the request was answered early: {self.early}"
        self.response = self.exchange.finish([], [])
        return self

    @property
    def set_cookies(self) -> list[str]:
        """The ``Set-Cookie`` values of the response."""
        response = self.response
        if response is None:
            return []
        pairs = response.headers if isinstance(response, EarlyResponse) else response.add
        return [value for name, value in pairs if name.lower() == "set-cookie"]

    @property
    def status(self) -> int:
        """200 for the app's response, else the status of the response sent instead."""
        if self.early is not None:
            return self.early.status
        return self.response.status if isinstance(self.response, EarlyResponse) else 200

    def deliver(self) -> Flight:
        """The browser receives the response: its cookies go into the jar."""
        if self.response is None:
            self.respond()
        for header in self.set_cookies:
            apply_set_cookie(self.browser.jar, header)
        return self

    def lose(self) -> Flight:
        """The response never reaches the browser (client abort, proxy timeout)."""
        if self.response is None:
            self.respond()
        return self


@dataclass
class Browser:
    """A browser with one cookie jar, sending requests through ``kit``'s core."""

    kit: SessionKit
    jar: dict[str, str] = field(default_factory=dict)

    def header(self) -> str | None:
        """The ``Cookie`` header this browser sends now."""
        return "; ".join(f"{k}={v}" for k, v in self.jar.items()) or None

    def start(self, *, method: str = "GET", path: str = "/") -> Flight:
        """Send a request: open it and load its store record, as a front end does."""
        exchange = self.kit.open(self.header(), method=method, path=path, client="192.0.2.1")
        early = exchange.early
        if early is None:
            early = exchange.load_record()
        return Flight(self, exchange, early)

    def request(self, act: Act = lambda session: None, **kwargs: Any) -> Flight:
        """One whole request: start, run ``act``, respond, deliver."""
        flight = self.start(**kwargs)
        if flight.early is None:
            flight.run(act).respond()
        return flight.deliver()

    def copy(self) -> Browser:
        """Another browser holding copies of this one's cookies (a thief, say)."""
        return Browser(self.kit, dict(self.jar))

    def user(self) -> Any:
        """The user this browser's next request is served as (a read-only request)."""
        return self.request(lambda session: session.user_id).result


def login(user: Any) -> Act:
    """App code that logs ``user`` in."""
    return lambda session: session.login(user)


def put(**items: Any) -> Act:
    """App code that writes ``items`` to the session."""
    return lambda session: session.update(items)


def read(key: str) -> Act:
    """App code that reads one key."""
    return lambda session: session.get(key)


class Contended(MemoryStore):
    """A MemoryStore where, ``rivals`` times, another request writes the family just
    between a request's load and its conditional save (as a busy browser's tabs do)."""

    def __init__(self) -> None:
        super().__init__()
        self.rivals = 0

    def save(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        current = super().load(ref, now)
        if self.rivals and isinstance(current, Record) and expected == current.version:
            self.rivals -= 1
            rival = replace(current, version=current.version + 1)
            assert super().save(ref, current.version, rival, until, now)
        return super().save(ref, expected, stored, until, now)
