"""A state machine of one user's session against a reference model, on every store.

An honest browser (several tabs, one cookie jar) and a thief (copies of the browser's
cookies, requests held open) send interleaved requests through the core; responses are
delivered in any order or lost; time moves; the user logs in, out, is revoked. The model
keeps only what a user and a reviewer can see, and hypothesis looks for a sequence that
breaks it:

- **no ended family ever comes back**: once a logout, a login, ``revoke_user`` or a
  detected replay ended a family, its record stays ended, and no request is served as it;
- **no honest browser is logged out** except by its own logout or login (a lost login or
  logout response leaves it logged out too), a revocation, or a replay the thief caused;
  it is never the cause of a ``replayed_id`` event. One limit no server can lift: two
  requests sent with no session cookie at all each start a session of their own, and the
  browser keeps the one answered last;
- **data never rolls back**: a counter only this browser increments never goes down
  within one login.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from flows import Browser, Flight
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sessionkit import SecurityEvent, Session, SessionKit
from sessionkit.families import Ended, FamilyRef
from sessionkit.stores.base import Store

USERS = ("alice", "bob")
ACTIONS = ("read", "count", "rotate", "login", "logout", "expiry")
DAY = 24 * 3600


class Lifecycle(RuleBasedStateMachine):
    """One user's browser and a thief, against a model (see the module docstring)."""

    store: Store
    clock: Any

    def __init__(self) -> None:
        super().__init__()
        self.events: list[SecurityEvent] = []
        self.kit = SessionKit(
            secret_keys=[KEY],
            store=self.store,
            clock=self.clock,
            visitor_cookie=None,
            idle_timeout=10 * DAY,
            absolute_timeout=10 * DAY,
            on_security_event=self.events.append,
        )
        self.browser = Browser(self.kit)
        self.thief: list[Browser] = []
        self.flights: list[tuple[Flight, str, Any, bool]] = []
        self.held: list[Flight] = []
        #: Whether the thief has used a copy (only then may a replay be detected).
        self.thief_active = False
        #: Who the browser's jar is logged in as, and the family it points at, by the model.
        self.jar_user: Any = None
        self.jar_family: str | None = None
        #: family -> user, of every family ever served; and the ended ones.
        self.families: dict[str, Any] = {}
        self.ended: set[str] = set()
        #: family -> the highest counter value the browser saw in it.
        self.counters: dict[str, int] = {}

    # -- helpers ---------------------------------------------------------------------

    def _served(self, flight: Flight) -> tuple[str | None, Any]:
        session = flight.session
        if session.user_id is None and session.is_new:
            return None, None
        family = session.state.family
        assert family not in self.ended, "a request was served as an ended family"
        self.families[family] = session.user_id
        return family, session.user_id

    def _act(self, session: Session, action: str, user: Any) -> None:
        if action == "read":
            session.get("n")
        elif action == "count":
            session["n"] = session.get("n", 0) + 1
        elif action == "rotate":
            session.rotate()
        elif action == "login":
            session.login(user)
        elif action == "logout":
            session.invalidate()
        elif action == "expiry":
            session.set_expiry(3 * DAY)

    def _ended_by(self, flight: Flight) -> None:
        ended = flight.session.ended
        if ended is not None:
            self.ended.add(ended)

    def _replays(self, before: int) -> None:
        """Account for a replay detected since event ``before``: only a thief causes one."""
        if any(e.reason == "replayed_id" for e in self.events[before:]):
            assert self.thief_active, "a replay was detected with no copy in use"
            # The whole family of the replayed id ends, the browser's with it.
            for family, user in self.families.items():
                if user is not None and self._gone(family, user):
                    self.ended.add(family)
            self.jar_user = self.jar_family = None

    def _gone(self, family: str, user: Any) -> bool:
        ref = FamilyRef(family, user, self.kit.namespaces)
        stored = self.store.load(ref, self.clock())
        return stored is None or isinstance(stored, Ended)

    # -- the honest browser ----------------------------------------------------------

    @rule(action=st.sampled_from(ACTIONS), user=st.sampled_from(USERS))
    def tab_sends(self, action: str, user: str) -> None:
        had_cookie = self.kit.session_spec.name in self.browser.jar
        flight = self.browser.start(method="POST")
        assert flight.early is None
        self._served(flight)
        refused = had_cookie and flight.session.is_new
        flight.run(lambda session: self._act(session, action, user))
        self.flights.append((flight, action, user, refused))

    @precondition(lambda self: self.flights)
    @rule(data=st.data())
    def tab_gets_response(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.flights) - 1))
        flight, action, _, refused = self.flights.pop(index)
        before = len(self.events)
        flight.respond()
        assert flight.status == 200, f"the browser got {flight.status}"
        self._replays(before)
        self._ended_by(flight)
        if flight.session.ended is not None and flight.session.ended == self.jar_family:
            self.jar_user = self.jar_family = None
        if not data.draw(st.booleans(), label="delivered"):
            flight.lose()
            return
        flight.deliver()
        name = self.kit.session_spec.name + "="
        for cookie in flight.set_cookies:
            if not cookie.startswith(name):
                continue
            if "Max-Age=0" in cookie:
                assert action == "logout" or refused, (
                    f"a {action} response expired the session cookie of a live session"
                )
                self.jar_user = self.jar_family = None
            else:
                state = flight.session.state
                assert state.family not in self.ended, "a response handed out an ended family"
                self.jar_user, self.jar_family = state.user_id, state.family

    @rule()
    def browser_checks(self) -> None:
        before = len(self.events)
        flight = self.browser.start()
        self._replays(before)
        family, user = self._served(flight)
        assert user == self.jar_user, f"served as {user!r}, the jar holds {self.jar_user!r}"
        count = flight.run(lambda s: s.get("n", 0)).result
        if family is not None:
            assert count >= self.counters.get(family, 0), "the session data rolled back"
            self.counters[family] = count
        flight.respond().deliver()

    # -- the thief and the operator --------------------------------------------------

    @rule()
    def thief_copies_the_cookies(self) -> None:
        self.thief.append(self.browser.copy())

    @precondition(lambda self: self.thief)
    @rule(data=st.data(), write=st.booleans())
    def thief_sends(self, data: st.DataObject, write: bool) -> None:
        thief = data.draw(st.sampled_from(self.thief))
        self.thief_active = True
        before = len(self.events)
        flight = thief.start(method="POST")
        self._replays(before)
        self._served(flight)
        if data.draw(st.booleans(), label="held"):
            if write:
                flight.run(lambda session: session.__setitem__("thief", True))
            self.held.append(flight)
        else:
            flight.run(lambda session: session.get("n")).deliver()

    @precondition(lambda self: self.held)
    @rule()
    def thief_finishes_a_held_request(self) -> None:
        flight = self.held.pop(0)
        before = len(self.events)
        flight.deliver()
        self._replays(before)

    @rule()
    def operator_revokes_the_user(self) -> None:
        user = self.jar_user
        if user is None:
            return
        self.kit.revoke_user(user)
        for family, owner in self.families.items():
            if owner == user:
                self.ended.add(family)
        self.jar_user = self.jar_family = None

    @rule(seconds=st.sampled_from([1, 5, 11, 61, 901]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def ended_families_stay_ended(self) -> None:
        for family in self.ended:
            assert self._gone(family, self.families.get(family)), f"family {family} came back"


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


KEY = "q3bIrn0iXv0Yyl2mQ7lD3nVbD2kRaE8wZp6sTu9xC4Y"


@pytest.mark.parametrize("examples", [600])
def test_the_family_lifecycle_holds_on_memory(examples: int) -> None:
    from sessionkit.stores import MemoryStore

    class OnMemory(Lifecycle):
        def __init__(self) -> None:
            self.store = MemoryStore()
            self.clock = _Clock()
            super().__init__()

    OnMemory.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    OnMemory.TestCase().runTest()


def test_the_family_lifecycle_holds_on_sqlite(tmp_path: Any) -> None:
    from sessionkit.stores import SQLiteStore

    counter = iter(range(10**6))

    class OnSQLite(Lifecycle):
        def __init__(self) -> None:
            self.store = SQLiteStore(tmp_path / f"s{next(counter)}.db")
            self.clock = _Clock()
            super().__init__()

    OnSQLite.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
    OnSQLite.TestCase().runTest()


def test_the_family_lifecycle_holds_on_redis(redis_server: Any) -> None:
    import redis

    from sessionkit.stores.redis import RedisStore

    client = redis.Redis.from_url(redis_server.url)

    class OnRedis(Lifecycle):
        def __init__(self) -> None:
            client.flushall()
            self.store = RedisStore(redis_server.url)
            self.clock = _Clock()
            super().__init__()

        def teardown(self) -> None:
            self.store.close()  # type: ignore[attr-defined]

    OnRedis.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
    OnRedis.TestCase().runTest()
