"""Security events: one frozen record per rejected cookie, logged on ``sessionkit.security``.

An event names the reason, the cookie and (only as configured) the client address.
It never carries the cookie's value or any session data.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DUPLICATE",
    "EXPIRED_ABSOLUTE",
    "EXPIRED_IDLE",
    "FROM_THE_FUTURE",
    "INVALID_PAYLOAD",
    "MALFORMED",
    "OVERSIZED",
    "REPLAYED",
    "REVOKED",
    "SECURITY_LOGGER",
    "TAMPERED",
    "UNKNOWN_KEY",
    "AddressMode",
    "SecurityEvent",
    "client_for_log",
]

#: The logger every security event goes to, at WARNING.
SECURITY_LOGGER = logging.getLogger("sessionkit.security")

#: Not base64url, wrong length or unknown format version.
MALFORMED = "malformed"
#: Well-formed, but the authentication tag does not verify (altered, or another cookie's value).
TAMPERED = "tampered"
#: Sealed under a key that is not (or no longer) in the key ring.
UNKNOWN_KEY = "unknown_key"
#: Longer than any cookie we issue.
OVERSIZED = "oversized"
#: The same cookie name appeared more than once in the request.
DUPLICATE = "duplicate"
#: The session was idle for longer than the idle timeout.
EXPIRED_IDLE = "expired_idle"
#: The session is older than the absolute timeout.
EXPIRED_ABSOLUTE = "expired_absolute"
#: A timestamp inside the sealed payload lies in the future beyond the allowed clock skew.
FROM_THE_FUTURE = "from_the_future"
#: Authentic, but the payload inside does not have the expected shape.
INVALID_PAYLOAD = "invalid_payload"
#: Authentic, but the store holds no such session: logged out, revoked or expired there.
REVOKED = "revoked"
#: A session id rotated out before the grace window came back: the cookie was copied.
#: The whole session (every id it had and has) is revoked.
REPLAYED = "replayed_id"

#: The cookies-required gate turned a client away over plain http to a host that is not
#: loopback: the cookies are ``Secure``, so no client keeps them there (not a cookie of
#: the client's; the site is served over http).
INSECURE_TRANSPORT = "insecure_transport"

AddressMode = Literal["truncated", "full", "off"]


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """A cookie was rejected. ``reason`` is one of this module's reason constants."""

    reason: str
    cookie: str
    client: str | None


def client_for_log(address: str | None, mode: AddressMode) -> str | None:
    """Return the client address as it may be logged.

    ``"truncated"`` keeps the network part only (IPv4 /24, IPv6 /48), ``"full"`` keeps it
    all, ``"off"`` drops it. Anything that is not an IP address (a Unix socket path, a
    forged value) is logged as ``None``.
    """
    if address is None or mode == "off":
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if mode == "full":
        return str(ip)
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)
