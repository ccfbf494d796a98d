"""Security events: one frozen record per rejected cookie or refused request.

They are logged on ``sessionkit.security``.

An event names the reason, the cookie and (only as configured) the client address.
It never carries the cookie's value or any session data.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CROSS_SITE",
    "DUPLICATE",
    "EXPIRED_ABSOLUTE",
    "EXPIRED_IDLE",
    "FORGERY_REASONS",
    "FROM_THE_FUTURE",
    "INVALID_PAYLOAD",
    "MALFORMED",
    "ORIGIN_MISMATCH",
    "OVERSIZED",
    "REPLAYED",
    "REVOKED",
    "SECURITY_LOGGER",
    "TAMPERED",
    "TOKEN_INVALID",
    "TOKEN_MISSING",
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

#: An unsafe request whose ``Sec-Fetch-Site`` says another site (or subdomain) sent it.
CROSS_SITE = "cross_site"
#: An unsafe request (or a WebSocket handshake) whose ``Origin`` or ``Referer`` is
#: neither the request's own origin nor a trusted one.
ORIGIN_MISMATCH = "origin_mismatch"
#: An unsafe request to a token path that carried no anti-forgery token.
TOKEN_MISSING = "token_missing"  # noqa: S105 - a name, not a secret
#: An anti-forgery token that is not this session's (another session, altered, from
#: before a login or rotation, or for another token path).
TOKEN_INVALID = "token_invalid"  # noqa: S105 - a name, not a secret
#: The reasons of a refused request (rather than a rejected cookie).
FORGERY_REASONS = frozenset({CROSS_SITE, ORIGIN_MISMATCH, TOKEN_MISSING, TOKEN_INVALID})
#: The cookies-required gate turned a client away over plain http to a host that is not
#: loopback: the cookies are ``Secure``, so no client keeps them there (not a cookie of
#: the client's; the site is served over http).
INSECURE_TRANSPORT = "insecure_transport"

AddressMode = Literal["truncated", "full", "off"]


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """A cookie was rejected, or a request refused as forged.

    ``reason`` is one of this module's reason constants; for a refused request
    (:data:`FORGERY_REASONS`) ``cookie`` names the session cookie it would have used.
    """

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
