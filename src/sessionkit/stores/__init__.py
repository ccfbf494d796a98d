"""Server-side stores: session data on the server, revocation, logout-everywhere, devices.

- :class:`MemoryStore` — one process (tests, a single worker);
- :class:`SQLiteStore` — one machine, several worker processes sharing a file;
- :class:`RedisStore` — many machines (needs ``pip install "sessionkit-secure[redis]"``).

:class:`RedisStore` is imported on first use, so ``import sessionkit.stores`` never
imports redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..families import Ended, FamilyRef, Record
from .base import Store, StoreUnavailable
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = [
    "Ended",
    "FamilyRef",
    "MemoryStore",
    "Record",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "StoreUnavailable",
]


def __getattr__(name: str) -> Any:
    """Import :class:`RedisStore` (and so redis-py) only when it is asked for."""
    if name == "RedisStore":
        from .redis import RedisStore

        globals()["RedisStore"] = RedisStore
        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the public names, :class:`RedisStore` included."""
    return sorted(set(globals()) | set(__all__))
