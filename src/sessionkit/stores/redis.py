"""A store in Redis: any number of machines share it.

Keys (``prefix`` defaults to ``sessionkit:``):

``{prefix}f:{family}``
    the record, as :meth:`SessionRecord.dumps` text;
``{prefix}o:{family}``
    the user index key of the family's user (absent for an anonymous session), so a
    save that rebinds the family can unlink it from the old user;
``{prefix}u:{userkey}``
    a set of the families bound to the user whose index key is ``userkey`` (the JSON
    text of the user id, so ``1`` and ``"1"`` differ).

Family and owner keys expire with the record: ``PX`` of ``expires_at - now`` at save,
so the time to live is measured on the caller's clock, whatever the server's clock says
(machines whose clocks disagree with the Redis host lose no sessions early). A user's set
expires with the longest-lived of its families. Saves, deletes and ``delete_user`` each
run as one Lua script, so every call is atomic on the server.

The blocking forms use redis-py's client; the coroutine forms use ``redis.asyncio``,
one client per running event loop (an asyncio connection belongs to the loop that made
it). That client is closed when its loop shuts down (``asyncio.run`` and servers such as
uvicorn do that), or earlier by :meth:`RedisStore.aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigurationError
from ._util import parse_record, ttl_ms, user_key
from .base import SessionRecord, StoreUnavailable

try:
    import redis as redis_py
    import redis.asyncio as redis_asyncio
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.commands.core import AsyncScript, Script
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised in a test with redis hidden
    raise ImportError(
        "sessionkit.stores.redis needs redis-py (redis>=5), which is not installed: "
        "pip install sessionkit[redis]"
    ) from exc

__all__ = ["RedisStore"]

_T = TypeVar("_T")

# KEYS: record key, owner key
# ARGV: record text, time to live (ms), user index key ("" for none), family, prefix
_SAVE = """
local ttl = tonumber(ARGV[2])
local user = ARGV[3]
local old = redis.call('GET', KEYS[2])
if old and (old ~= user or ttl <= 0) then
  redis.call('SREM', ARGV[5] .. 'u:' .. old, ARGV[4])
end
if ttl <= 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
if user == '' then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('SET', KEYS[2], user, 'PX', ttl)
local index = ARGV[5] .. 'u:' .. user
redis.call('SADD', index, ARGV[4])
if redis.call('PTTL', index) < ttl then
  redis.call('PEXPIRE', index, ttl)
end
-- drop a few members whose records have expired, so the set stays small
for _, family in ipairs(redis.call('SRANDMEMBER', index, 3)) do
  if redis.call('GET', ARGV[5] .. 'o:' .. family) ~= user then
    redis.call('SREM', index, family)
  end
end
return 1
"""

# KEYS: record key, owner key; ARGV: family, prefix
_DELETE = """
local owner = redis.call('GET', KEYS[2])
if owner then
  redis.call('SREM', ARGV[2] .. 'u:' .. owner, ARGV[1])
end
return redis.call('DEL', KEYS[1], KEYS[2])
"""

# KEYS: user index key; ARGV: user index key text, prefix
_DELETE_USER = """
local n = 0
for _, family in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local owner = ARGV[2] .. 'o:' .. family
  if redis.call('GET', owner) == ARGV[1] then
    redis.call('DEL', ARGV[2] .. 'f:' .. family, owner)
    n = n + 1
  end
end
redis.call('DEL', KEYS[1])
return n
"""


@dataclass(eq=False)
class _LoopClient:
    """The asyncio client of one event loop and its scripts."""

    client: redis_asyncio.Redis
    save: AsyncScript
    delete: AsyncScript
    delete_user: AsyncScript
    keeper: AsyncGenerator[None, None] | None = field(default=None)


class RedisStore:
    """Keep session records in the Redis server at ``url``.

    ``prefix`` starts every key, so several applications can share one database.
    ``socket_timeout`` (seconds) bounds each connect, read and write: when the server
    does not answer, a call raises :class:`StoreUnavailable` within about that time.
    Connections are re-made as needed, so once the server is back the next call works.

    :meth:`close` closes the blocking client's connections; each event loop's client is
    closed when that loop shuts down, or by ``await store.aclose()`` (say, at lifespan
    shutdown).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "sessionkit:",
        socket_timeout: float = 1.0,
    ) -> None:
        if not socket_timeout > 0:
            raise ConfigurationError(
                f"RedisStore socket_timeout must be a positive number of seconds, "
                f"not {socket_timeout!r}"
            )
        self._url = url
        self._prefix = prefix
        self._timeout = socket_timeout
        self._where = _redact(url)
        try:
            self._client = redis_py.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                # One immediate retry on a broken connection (a pooled socket the server
                # closed while it restarted); none on a timeout, so a call never waits
                # much more than socket_timeout.
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                decode_responses=True,
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"RedisStore url {self._where!r} is not usable: {exc}; use "
                "redis://host:port/db, rediss://host:port/db or unix:///path/to/socket"
            ) from exc
        self._save: Script = self._client.register_script(_SAVE)
        self._delete: Script = self._client.register_script(_DELETE)
        self._delete_user: Script = self._client.register_script(_DELETE_USER)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._loops_lock = threading.Lock()

    @property
    def prefix(self) -> str:
        """The text every key of this store starts with."""
        return self._prefix

    def close(self) -> None:
        """Close the blocking client's connections (a later call opens new ones)."""
        self._client.close()

    async def aclose(self) -> None:
        """Close the running event loop's client now rather than at loop shutdown."""
        with self._loops_lock:
            entry = self._loops.get(asyncio.get_running_loop())
        if entry is not None and entry.keeper is not None:
            await entry.keeper.aclose()

    # -- keys ------------------------------------------------------------------------

    def _record_key(self, family: str) -> str:
        return f"{self._prefix}f:{family}"

    def _owner_key(self, family: str) -> str:
        return f"{self._prefix}o:{family}"

    def _index_key(self, user: str) -> str:
        return f"{self._prefix}u:{user}"

    def _save_args(
        self, family: str, record: SessionRecord, now: float
    ) -> tuple[list[str], list[str | int]]:
        user = "" if record.user_id is None else user_key(record.user_id)
        ttl = ttl_ms(record.expires_at, now)
        keys = [self._record_key(family), self._owner_key(family)]
        return keys, [record.dumps(), ttl, user, family, self._prefix]

    def _loaded(self, family: str, text: object, now: float) -> SessionRecord | None:
        if not isinstance(text, str):
            return None
        record = parse_record(text, family)
        if record is None or record.expires_at <= now:
            return None
        return record

    # -- blocking forms --------------------------------------------------------------

    def load(self, family: str, now: float) -> SessionRecord | None:
        """Return the live record of ``family``, or None."""
        text = self._call(lambda: self._client.get(self._record_key(family)))
        return self._loaded(family, text, now)

    def save(self, family: str, record: SessionRecord, now: float) -> None:
        """Create or replace the record of ``family``; an already expired one is dropped."""
        keys, args = self._save_args(family, record, now)
        self._call(lambda: self._save(keys, args))

    def delete(self, family: str) -> None:
        """Forget ``family``; a missing family is not an error."""
        keys = [self._record_key(family), self._owner_key(family)]
        self._call(lambda: self._delete(keys, [family, self._prefix]))

    def delete_user(self, user_id: str | int) -> int:
        """Forget every family bound to ``user_id``; return how many there were."""
        user = user_key(user_id)
        keys = [self._index_key(user)]
        return int(self._call(lambda: self._delete_user(keys, [user, self._prefix])))

    # -- coroutine forms -------------------------------------------------------------

    async def aload(self, family: str, now: float) -> SessionRecord | None:
        """Coroutine form of :meth:`load`."""
        loop_client = await self._loop_client()
        text = await self._acall(lambda: loop_client.client.get(self._record_key(family)))
        return self._loaded(family, text, now)

    async def asave(self, family: str, record: SessionRecord, now: float) -> None:
        """Coroutine form of :meth:`save`."""
        keys, args = self._save_args(family, record, now)
        loop_client = await self._loop_client()
        await self._acall(lambda: loop_client.save(keys, args))

    async def adelete(self, family: str) -> None:
        """Coroutine form of :meth:`delete`."""
        keys = [self._record_key(family), self._owner_key(family)]
        loop_client = await self._loop_client()
        await self._acall(lambda: loop_client.delete(keys, [family, self._prefix]))

    async def adelete_user(self, user_id: str | int) -> int:
        """Coroutine form of :meth:`delete_user`."""
        user = user_key(user_id)
        keys = [self._index_key(user)]
        loop_client = await self._loop_client()
        return int(await self._acall(lambda: loop_client.delete_user(keys, [user, self._prefix])))

    # -- internals -------------------------------------------------------------------

    def _call(self, op: Callable[[], _T]) -> _T:
        try:
            return op()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis store at {self._where}: {exc}") from exc

    async def _acall(self, op: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await op()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis store at {self._where}: {exc}") from exc

    async def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            entry = self._loops.get(loop)
            if entry is not None:
                return entry
            client = redis_asyncio.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=AsyncRetry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                decode_responses=True,
            )
            entry = _LoopClient(
                client,
                client.register_script(_SAVE),
                client.register_script(_DELETE),
                client.register_script(_DELETE_USER),
            )
            self._loops[loop] = entry
        # A started async generator is closed by the loop's shutdown_asyncgens() while the
        # loop still runs: that is where the client closes its connections.
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
            # aclose() arrived in redis-py 5.0.1; 5.0.0 spells it close().
            close = getattr(entry.client, "aclose", None) or entry.client.close
            with contextlib.suppress(RedisError, OSError):  # closing is best effort
                await close()


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return urlunsplit(parts._replace(netloc=user + netloc))
    except ValueError:
        return "<unparsable url>"
