"""A store in Redis: any number of machines share it, on one server, Sentinel or Cluster.

Keys (``P`` is ``prefix`` + a namespace + ``:``; the namespace is derived per application
from its key ring, see :class:`~sessionkit.families.FamilyRef`):

``P{u:<user>}:l``
    a sorted set of one user's live families, scored by when each may be forgotten (ms):
    the authority for "is this family alive". A family missing here is logged out,
    whatever its record says, so an evicted or lost key can only log people out, never
    keep them in;
``P{u:<user>}:<family>``
    the stored text of one of that user's families (record or tombstone), a string with
    the family's time to live;
``P{a:<family>}``
    the stored text of an anonymous family (a string with a time to live).

``<user>`` is a hash of the user id (22 base64url characters), so key names carry no
user data and have a bounded length. Every key of one user (or of one anonymous family)
shares one hash tag, so all of them sit in one Cluster slot and every operation is one
Lua script over keys it receives in ``KEYS``: one round trip, atomic, on every topology.
Times to live are measured on the caller's clock, whatever the server's clock says.

Loads and saves look in every namespace of the key ring and write in the newest, so
after a key rotation records move to the new namespace as they are written.
:meth:`RedisStore.revoke_user` renames the user's live sets in one script, whatever the
number of sessions: from then on none of them is alive. It then removes the revoked
families' records in chunks of :data:`_CHUNK`, so no single command runs long (records
an outage leaves behind are dead, and expire).

**Replication.** Redis replicates asynchronously: a revocation acknowledged by the master
alone can be lost in a failover, and the revoked cookie would work again. So after every
revocation (a logout, a replayed id, ``revoke_user``) the store sends ``WAIT`` on the same
connection, in the same round trip, for ``replicas`` replicas (by default, one when the
server has any) for at most ``replica_timeout`` seconds. When no replica acknowledges in
time the revocation still stands on the master and a warning is logged: a failover in
that window could undo it. Cluster clients do not support ``WAIT`` this way; there, use
replicas with ``min-replicas-to-write``.

The blocking forms use a redis-py client with a blocking pool of ``max_connections``
(a request waits up to ``socket_timeout`` for a free connection instead of failing); the
coroutine forms use ``redis.asyncio``, one client per running event loop, closed when its
loop shuts down or by :meth:`RedisStore.aclose`. Or pass your own clients (``client=``,
``async_client=``): plain, Sentinel (``Sentinel.master_for``) or Cluster.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import math
import secrets
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError
from ..families import FamilyRef, Record, Stored
from ..session import UserId
from ._util import LOGGER, parse, parse_record, user_key
from .base import StoreUnavailable

try:
    import redis as redis_py
    import redis.asyncio as redis_asyncio
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisClusterException, RedisError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised in a test with redis hidden
    raise ImportError(
        "sessionkit.stores.redis needs redis-py (redis>=5), which is not installed: "
        'pip install "sessionkit-secure[redis]"'
    ) from exc

__all__ = ["DEFAULT_MAX_CONNECTIONS", "RedisStore"]

_T = TypeVar("_T")

#: Connections per pool (per process, and per event loop for the asyncio client).
DEFAULT_MAX_CONNECTIONS = 64
#: Seconds between two looks at how many replicas the server has (``replicas=None``).
_REPLICA_CHECK_EVERY = 30.0
#: Expired families forgotten per save, so a user's keys never grow without bound.
_TRIM = 16
#: Families whose keys one command of :meth:`RedisStore.revoke_user` removes, and whose
#: records one command of :meth:`RedisStore.families_of` reads.
_CHUNK = 100
#: How a tombstone's text starts (a record has the session id in its second field).
_ENDED_PATTERN = "^%[%d+,0,"
_ERRORS = (RedisError, RedisClusterException, OSError)

# KEYS: per namespace, newest first: the family's key, then (a user's family) the user's
# live set. ARGV: family, now (ms), 'u' or 'a'. A user's record counts only while the live
# set holds its family with a score in the future; a tombstone stands on its own.
_LOAD = """
local fam, now = ARGV[1], tonumber(ARGV[2])
local step = ARGV[3] == 'u' and 2 or 1
for i = 1, #KEYS, step do
  local v = redis.call('GET', KEYS[i])
  if v then
    if step == 1 or string.match(v, ENDED) then return v end
    local s = redis.call('ZSCORE', KEYS[i+1], fam)
    if s and tonumber(s) > now then return v end
    return false
  end
end
return false
""".replace("ENDED", repr(_ENDED_PATTERN))

# KEYS as for _LOAD. ARGV: family, now (ms), 'u' or 'a', expected version ('' for none),
# text, until (ms), '1' live or '0' tombstone.
_SAVE = """
local fam, now, user = ARGV[1], tonumber(ARGV[2]), ARGV[3] == 'u'
local expected, text, untl, live = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1'
local step = user and 2 or 1
local cur = nil
for i = 1, #KEYS, step do
  cur = redis.call('GET', KEYS[i])
  if cur then
    if user and not string.match(cur, ENDED) then
      local s = redis.call('ZSCORE', KEYS[i+1], fam)
      if not (s and tonumber(s) > now) then cur = nil end
    end
    break
  end
end
if expected == '' then
  if cur then return 0 end
elseif not cur or string.match(cur, '^%[(%d+),') ~= expected then
  return 0
end
for i = 1, #KEYS, step do
  redis.call('DEL', KEYS[i])
  if user then redis.call('ZREM', KEYS[i+1], fam) end
end
if untl <= now then return 1 end
redis.call('SET', KEYS[1], text, 'PX', math.ceil(untl - now))
if not user or not live then return 1 end
redis.call('ZADD', KEYS[2], untl, fam)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, TRIM)
if #old > 0 then redis.call('ZREM', KEYS[2], unpack(old)) end
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(top[2]) - now))
return 1
""".replace("TRIM", str(_TRIM)).replace("ENDED", repr(_ENDED_PATTERN))

# KEYS: per namespace, the user's live set, then the name it is renamed to. ARGV: now (ms).
# Returns how many families were live. Renaming is one step whatever the number of
# families: none of them is live any more once it is done.
_REVOKE_USER = """
local n = 0
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    n = n + redis.call('ZCOUNT', KEYS[i], '(' .. ARGV[1], '+inf')
    redis.call('RENAME', KEYS[i], KEYS[i+1])
  end
end
return n
"""

# KEYS: a revoked live set, then the keys of some of its families. ARGV: those families.
_FORGET = """
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('UNLINK', unpack(KEYS, 2))
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: some families' keys. Returns their texts (nil for a missing one).
_READ = """
local out = {}
for i = 1, #KEYS do out[i] = redis.call('GET', KEYS[i]) or false end
return out
"""


def _user_tag(user_id: UserId) -> str:
    digest = hashlib.sha256(user_key(user_id).encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


@dataclass(eq=False)
class _Scripts:
    """The scripts registered on one client (sync or async)."""

    load: Any
    save: Any
    revoke_user: Any
    forget: Any
    read: Any

    @classmethod
    def on(cls, client: Any) -> _Scripts:
        return cls(
            client.register_script(_LOAD),
            client.register_script(_SAVE),
            client.register_script(_REVOKE_USER),
            client.register_script(_FORGET),
            client.register_script(_READ),
        )


@dataclass(eq=False)
class _LoopClient:
    """The asyncio client of one event loop and its scripts."""

    client: Any
    scripts: _Scripts
    keeper: AsyncGenerator[None, None] | None = field(default=None)


class RedisStore:
    """Keep session families in Redis.

    Give ``url`` (``redis://[[user]:password@]host:port/db``, ``rediss://...``,
    ``unix:///path``), or your own ``client`` (blocking, for WSGI) and/or
    ``async_client`` (``redis.asyncio``, for ASGI) — plain, Sentinel or Cluster. With
    only ``client``, the coroutine forms run it in a worker thread; with only
    ``async_client``, the blocking forms are not available.

    ``prefix`` starts every key. ``socket_timeout`` (seconds) bounds each connect, read,
    write and wait for a free pooled connection: when the server does not answer, a
    call raises :class:`StoreUnavailable` within about that time, and once it is back
    the next call works. ``replicas``: how many replicas must acknowledge a revocation
    (None: one when the server has any), waited for at most ``replica_timeout``, which
    must be shorter than the client's socket timeout (``socket_timeout`` here, or the one
    your own client was given).
    Passwords never appear in messages or ``repr``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        async_client: Any = None,
        prefix: str = "sessionkit:",
        socket_timeout: float = 1.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        replicas: int | None = None,
        replica_timeout: float = 0.1,
    ) -> None:
        if not socket_timeout > 0:
            raise ConfigurationError(
                f"RedisStore socket_timeout must be a positive number of seconds, "
                f"not {socket_timeout!r}"
            )
        if type(max_connections) is not int or max_connections < 1:
            raise ConfigurationError(
                f"RedisStore max_connections must be a positive whole number, "
                f"not {max_connections!r}"
            )
        if replicas is not None and (type(replicas) is not int or replicas < 0):
            raise ConfigurationError(f"RedisStore replicas must be None or 0 or more: {replicas!r}")
        if not replica_timeout > 0:
            raise ConfigurationError(
                f"RedisStore replica_timeout must be positive seconds, not {replica_timeout!r}"
            )
        if url is not None and replica_timeout >= socket_timeout:
            raise ConfigurationError(
                f"RedisStore replica_timeout ({replica_timeout}s) must be shorter than "
                f"socket_timeout ({socket_timeout}s): the WAIT for replicas is read within "
                "socket_timeout, so a longer wait fails as an outage. Lower replica_timeout "
                "or raise socket_timeout"
            )
        if (url is None) == (client is None and async_client is None):
            raise ConfigurationError(
                "RedisStore needs either url= or your own client= / async_client=, not both"
            )
        self._url = url
        self._prefix = prefix
        self._timeout = socket_timeout
        self._max_connections = max_connections
        self._replicas = replicas
        self._replica_timeout = replica_timeout
        self._where, self._secret = _redact(url) if url is not None else ("your client", None)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._loops_lock = threading.Lock()
        self._known_replicas: tuple[float, int] = (-math.inf, 0)
        self._policy_checked = False
        self._async_given = async_client
        self._given_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        if url is not None:
            try:
                pool = redis_py.BlockingConnectionPool.from_url(
                    url,
                    max_connections=max_connections,
                    timeout=socket_timeout,
                    socket_timeout=socket_timeout,
                    socket_connect_timeout=socket_timeout,
                    # One immediate retry on a broken connection (a pooled socket the
                    # server closed while it restarted); none on a timeout, so a call
                    # never waits much more than socket_timeout.
                    retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                )
                client = redis_py.Redis.from_pool(pool)
            except ValueError as exc:
                raise ConfigurationError(
                    f"RedisStore url {self._where!r} is not usable: {self._hide(exc)}; use "
                    "redis://host:port/db, rediss://host:port/db or unix:///path/to/socket"
                ) from None
        self._client = client
        self._scripts = None if client is None else _Scripts.on(client)
        self._cluster = _is_cluster(client) or _is_cluster(async_client)

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, prefix={self._prefix!r})"

    @property
    def prefix(self) -> str:
        """The text every key of this store starts with."""
        return self._prefix

    def close(self) -> None:
        """Close the blocking client's connections (a later call opens new ones)."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the running event loop's client now rather than at loop shutdown."""
        with self._loops_lock:
            entry = self._loops.get(asyncio.get_running_loop())
        if entry is not None and entry.keeper is not None:
            await entry.keeper.aclose()

    # -- keys ------------------------------------------------------------------------

    def _keys(self, ref: FamilyRef) -> tuple[list[str], str]:
        if ref.user_id is None:
            return [f"{self._prefix}{ns}:{{a:{ref.family}}}" for ns in ref.namespaces], "a"
        keys = []
        for live in self._live_sets(ref.user_id, ref.namespaces):
            keys += [_family_key(live, ref.family), live]
        return keys, "u"

    def _live_sets(self, user_id: UserId, namespaces: Sequence[str]) -> list[str]:
        tag = _user_tag(user_id)
        return [f"{self._prefix}{ns}:{{u:{tag}}}:l" for ns in namespaces]

    def _save_args(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> tuple[list[str], list[Any]]:
        keys, kind = self._keys(ref)
        live = "1" if isinstance(stored, Record) else "0"
        expect = "" if expected is None else str(expected)
        return keys, [ref.family, _ms(now), kind, expect, stored.dumps(), _ms(until), live]

    # -- blocking forms --------------------------------------------------------------

    def load(self, ref: FamilyRef, now: float) -> Stored | None:
        """Return the stored state of ``ref``'s family, or None."""
        scripts = self._sync()
        keys, kind = self._keys(ref)
        text = self._call(lambda: scripts.load(keys, [ref.family, _ms(now), kind]))
        return None if text is None else parse(text, ref.family, ref.user_id)

    def save(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        """Write ``stored`` if the family's version is ``expected`` (None: nothing live)."""
        scripts = self._sync()
        keys, args = self._save_args(ref, expected, stored, until, now)
        if isinstance(stored, Record):
            return bool(self._call(lambda: scripts.save(keys, args)))
        return bool(self._replicated(lambda client: scripts.save(keys, args, client=client)))

    def revoke_user(self, user_id: UserId, namespaces: tuple[str, ...], now: float) -> int:
        """End every family bound to ``user_id``; return how many were live."""
        scripts = self._sync()
        keys = _revoking(self._live_sets(user_id, namespaces))
        ended = int(self._replicated(lambda c: scripts.revoke_user(keys, [_ms(now)], c)))
        with _left_to_expire():
            for revoked in keys[1::2]:
                while families := self._call(partial(self._client.zrange, revoked, 0, _CHUNK - 1)):
                    gone = [_family_key(revoked, _text(f)) for f in families]
                    self._call(partial(scripts.forget, [revoked, *gone], families))
        return ended

    def families_of(
        self, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        """The live families bound to ``user_id``, with their records."""
        scripts = self._sync()
        found: list[tuple[str, bytes | None]] = []
        for live in self._live_sets(user_id, namespaces):
            names = self._call(partial(self._client.zrangebyscore, live, f"({_ms(now)}", "+inf"))
            families = [_text(name) for name in names]
            for i in range(0, len(families), _CHUNK):
                chunk = families[i : i + _CHUNK]
                keys = [_family_key(live, f) for f in chunk]
                found += zip(chunk, self._call(partial(scripts.read, keys)), strict=True)
        return _records(found, user_id)

    # -- coroutine forms -------------------------------------------------------------

    async def aload(self, ref: FamilyRef, now: float) -> Stored | None:
        """Coroutine form of :meth:`load`."""
        if self._async_missing():
            return await asyncio.to_thread(self.load, ref, now)
        entry = await self._loop_client()
        keys, kind = self._keys(ref)
        text = await self._acall(lambda: entry.scripts.load(keys, [ref.family, _ms(now), kind]))
        return None if text is None else parse(text, ref.family, ref.user_id)

    async def asave(
        self, ref: FamilyRef, expected: int | None, stored: Stored, until: float, now: float
    ) -> bool:
        """Coroutine form of :meth:`save`."""
        if self._async_missing():
            return await asyncio.to_thread(self.save, ref, expected, stored, until, now)
        entry = await self._loop_client()
        keys, args = self._save_args(ref, expected, stored, until, now)
        if isinstance(stored, Record):
            return bool(await self._acall(lambda: entry.scripts.save(keys, args)))
        saved = await self._areplicated(entry, lambda c: entry.scripts.save(keys, args, client=c))
        return bool(saved)

    async def arevoke_user(self, user_id: UserId, namespaces: tuple[str, ...], now: float) -> int:
        """Coroutine form of :meth:`revoke_user`."""
        if self._async_missing():
            return await asyncio.to_thread(self.revoke_user, user_id, namespaces, now)
        entry = await self._loop_client()
        client, scripts = entry.client, entry.scripts
        keys = _revoking(self._live_sets(user_id, namespaces))
        ended = await self._areplicated(entry, lambda c: scripts.revoke_user(keys, [_ms(now)], c))
        with _left_to_expire():
            for revoked in keys[1::2]:
                while families := await self._acall(partial(client.zrange, revoked, 0, _CHUNK - 1)):
                    gone = [_family_key(revoked, _text(f)) for f in families]
                    await self._acall(partial(scripts.forget, [revoked, *gone], families))
        return int(ended)

    async def afamilies_of(
        self, user_id: UserId, namespaces: tuple[str, ...], now: float
    ) -> list[tuple[str, Record]]:
        """Coroutine form of :meth:`families_of`."""
        if self._async_missing():
            return await asyncio.to_thread(self.families_of, user_id, namespaces, now)
        entry = await self._loop_client()
        client, scripts = entry.client, entry.scripts
        found: list[tuple[str, bytes | None]] = []
        for live in self._live_sets(user_id, namespaces):
            names = await self._acall(partial(client.zrangebyscore, live, f"({_ms(now)}", "+inf"))
            families = [_text(name) for name in names]
            for i in range(0, len(families), _CHUNK):
                chunk = families[i : i + _CHUNK]
                keys = [_family_key(live, f) for f in chunk]
                found += zip(chunk, await self._acall(partial(scripts.read, keys)), strict=True)
        return _records(found, user_id)

    # -- replication -----------------------------------------------------------------

    def _replicas_wanted(self, count: Callable[[], int]) -> int:
        if self._replicas is not None or self._cluster:
            return 0 if self._cluster else self._replicas or 0
        checked_at, known = self._known_replicas
        if time.monotonic() - checked_at > _REPLICA_CHECK_EVERY:
            known = min(1, count())
            self._known_replicas = (time.monotonic(), known)
        return known

    def _replicated(self, op: Callable[[Any], Any]) -> Any:
        """Run a revoking script, then WAIT for replicas on the same connection."""
        client = self._client

        def count() -> int:
            return int(self._call(lambda: client.info("replication")).get("connected_slaves", 0))

        wanted = self._replicas_wanted(count)
        if not wanted:
            return self._call(lambda: op(None))

        def both() -> list[Any]:
            pipe = client.pipeline(transaction=False)
            op(pipe)
            pipe.execute_command("WAIT", wanted, _ms(self._replica_timeout))
            return list(pipe.execute())

        result, acks = self._call(both)
        self._check_acks(int(acks), wanted)
        return result

    async def _areplicated(self, entry: _LoopClient, op: Callable[[Any], Awaitable[Any]]) -> Any:
        client = entry.client
        if self._replicas is None and not self._cluster:
            checked_at, _ = self._known_replicas
            if time.monotonic() - checked_at > _REPLICA_CHECK_EVERY:
                info = await self._acall(lambda: client.info("replication"))
                self._known_replicas = (
                    time.monotonic(),
                    min(1, int(info.get("connected_slaves", 0))),
                )
        wanted = self._replicas_wanted(lambda: self._known_replicas[1])
        if not wanted:
            return await self._acall(lambda: op(None))

        async def both() -> list[Any]:
            pipe = client.pipeline(transaction=False)
            await op(pipe)
            pipe.execute_command("WAIT", wanted, _ms(self._replica_timeout))
            return list(await pipe.execute())

        result, acks = await self._acall(both)
        self._check_acks(int(acks), wanted)
        return result

    def _check_acks(self, acks: int, wanted: int) -> None:
        if acks < wanted:
            LOGGER.warning(
                "a session revocation was acknowledged by %d of %d replicas within %.3fs: "
                "it stands on the master, but a failover now could undo it",
                acks,
                wanted,
                self._replica_timeout,
            )

    # -- internals -------------------------------------------------------------------

    def _sync(self) -> _Scripts:
        if self._scripts is None:
            raise ConfigurationError(
                "this RedisStore was given only async_client=, so it serves ASGI apps only: "
                "pass client= too for WSGI (Flask, Django under WSGI)"
            )
        if not self._policy_checked:
            self._policy_checked = True
            with contextlib.suppress(*_ERRORS):
                _report_policy(self._client.config_get("maxmemory-policy"))
        return self._scripts

    def _async_missing(self) -> bool:
        """True when this event loop has no asyncio client: the blocking forms run in a thread.

        An ``async_client=`` belongs to the first event loop that uses it (redis-py's asyncio
        connections cannot move between loops); other loops use ``client=`` in a thread.
        """
        if self._url is not None:
            return False
        if self._async_given is None:
            return True
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            if self._given_loop is None:
                self._given_loop = weakref.ref(loop)
            owner = self._given_loop()
        if owner is loop:
            return False
        if self._client is not None:
            return True
        raise ConfigurationError(
            "this RedisStore's async_client= belongs to the event loop that first used it, "
            "and another event loop is using the store now: pass client= too (other loops "
            "then use it in a thread), or give each event loop its own RedisStore"
        )

    def _hide(self, exc: BaseException) -> str:
        text = str(exc)
        return text.replace(self._secret, "***") if self._secret else text

    def _call(self, op: Callable[[], _T]) -> _T:
        try:
            return op()
        except _ERRORS as exc:
            raise StoreUnavailable(f"Redis store at {self._where}: {self._hide(exc)}") from None

    async def _acall(self, op: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await op()
        except _ERRORS as exc:
            raise StoreUnavailable(f"Redis store at {self._where}: {self._hide(exc)}") from None

    async def _loop_client(self) -> _LoopClient:
        if self._cluster and self._async_given is not None:
            # An asyncio cluster client must learn the slot map (under its own lock) before
            # commands are sent side by side: redis-py's first commands race otherwise, and
            # an AttributeError escapes from its connections. Once done this returns at once.
            await self._acall(self._async_given.initialize)
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            entry = self._loops.get(loop)
            if entry is not None:
                return entry
            if self._async_given is not None:
                entry = _LoopClient(self._async_given, _Scripts.on(self._async_given))
                self._loops[loop] = entry
                check = True
            else:
                pool = redis_asyncio.BlockingConnectionPool.from_url(
                    str(self._url),
                    max_connections=self._max_connections,
                    timeout=self._timeout,
                    socket_timeout=self._timeout,
                    socket_connect_timeout=self._timeout,
                    retry=AsyncRetry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                )
                client = redis_asyncio.Redis.from_pool(pool)
                entry = _LoopClient(client, _Scripts.on(client))
                self._loops[loop] = entry
                check = not self._policy_checked
        self._policy_checked = True
        if check:
            with contextlib.suppress(*_ERRORS):
                _report_policy(await entry.client.config_get("maxmemory-policy"))
        if self._async_given is None:
            # A started async generator is closed by the loop's shutdown_asyncgens() while
            # the loop still runs: that is where the client closes its connections.
            entry.keeper = self._keeper(loop, entry)
            await entry.keeper.asend(None)
        return entry

    async def _keeper(
        self, loop: asyncio.AbstractEventLoop, entry: _LoopClient
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._loops_lock:
                if self._loops.get(loop) is entry:
                    del self._loops[loop]
            with contextlib.suppress(*_ERRORS):  # closing is best effort
                await entry.client.aclose()


def _is_cluster(client: Any) -> bool:
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster

    return isinstance(client, (RedisCluster, AsyncRedisCluster))


@contextlib.contextmanager
def _left_to_expire() -> Iterator[None]:
    """Removing a revoked user's records after the revocation stood: an outage there loses
    nothing (the records are dead, and expire), so it is logged, not raised."""
    try:
        yield
    except StoreUnavailable as exc:
        LOGGER.warning("revoked sessions' records are left to expire: %s", exc)


def _family_key(live_set: str, family: str) -> str:
    """The key of a user's family: the live set's name (or a revoked one's) up to its
    last ``:``, then the family id."""
    return f"{live_set[: live_set.index('}:') + 2]}{family}"


def _revoking(live_sets: list[str]) -> list[str]:
    """Each live set followed by the new name :data:`_REVOKE_USER` gives it."""
    mark = secrets.token_urlsafe(6)
    return [key for live in live_sets for key in (live, f"{live}:{mark}")]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _records(
    found: Sequence[tuple[str, bytes | None]], user_id: UserId
) -> list[tuple[str, Record]]:
    out = []
    for family, text in found:
        record = None if text is None else parse_record(text, family, user_id)
        if record is not None:
            out.append((family, record))
    return out


def _report_policy(answer: Any) -> None:
    """Warn when Redis may evict session keys (users would be logged out early)."""
    values = list(answer.values()) if isinstance(answer, dict) else []
    policy = values[0] if values else None
    if isinstance(policy, bytes):
        policy = policy.decode()
    if isinstance(policy, str) and policy != "noeviction" and not policy.startswith("volatile-"):
        LOGGER.warning(
            "Redis maxmemory-policy is %s: under memory pressure Redis may evict session "
            "keys, which logs those users out (never in). Use noeviction or a volatile-* "
            "policy, and give Redis the memory the sessions need",
            policy,
        )


def _redact(url: str) -> tuple[str, str | None]:
    """``url`` without its password (in the netloc or the query), and the password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>", None
    secret = parts.password
    netloc = parts.netloc
    if secret is not None:
        host = netloc.rsplit("@", 1)[1]
        netloc = (f"{parts.username}:***@" if parts.username else ":***@") + host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        for name, value in pairs:
            if name.lower() == "password" and value:
                secret = secret or value
        query = urlencode(
            [(n, "***" if n.lower() == "password" else v) for n, v in pairs], safe="*"
        )
    return urlunsplit(parts._replace(netloc=netloc, query=query)), secret
