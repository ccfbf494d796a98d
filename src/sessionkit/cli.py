"""The sessionkit command line: print fresh secret keys, check a policy, or the version."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence

from . import __version__
from .cookies import CookieSpec
from .errors import ConfigurationError
from .keys import KEY_BYTES, generate_key
from .kit import SessionKit
from .lifetime import DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT
from .stores.sqlite import SQLiteStore

__all__ = ["EXIT_REFUSED", "EXIT_SOUND", "EXIT_WEAK", "main", "weaknesses"]

#: The program name in usage and errors when run as the ``sessionkit`` console script.
PROG = "sessionkit"
#: ``sessionkit check``: the policy starts and has no weakness.
EXIT_SOUND = 0
#: ``sessionkit check``: the policy would be refused at start-up.
EXIT_REFUSED = 1
#: ``sessionkit check``: the policy starts, with the weaknesses it printed.
EXIT_WEAK = 3

_ENV_KEYS = "SESSIONKIT_SECRET_KEYS"
_DESCRIPTION = "The command line of sessionkit, cookie and session security middleware."
_KEYGEN_HELP = (
    f"print new secret keys ({KEY_BYTES} random bytes each, base64url), one a line; "
    f"list them, newest first, in {_ENV_KEYS}"
)
_CHECK_HELP = (
    f"check a policy: by default the one SessionKit.from_env() builds from {_ENV_KEYS}, "
    "or the application's own SessionKit; print it, name every weakness and end with a "
    f"verdict (exit status {EXIT_SOUND}: sound, {EXIT_WEAK}: weak, {EXIT_REFUSED}: refused)"
)
_APP_HELP = (
    "MODULE:NAME of the application's SessionKit (or of a function returning one), "
    "imported from the current folder, as in myapp.settings:kit"
)


def _count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return count


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"sessionkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    keygen = commands.add_parser("keygen", help=_KEYGEN_HELP, description=_KEYGEN_HELP)
    keygen.add_argument(
        "-n", type=_count, default=1, metavar="N", help="how many keys to print (default 1)"
    )
    check = commands.add_parser("check", help=_CHECK_HELP, description=_CHECK_HELP)
    check.add_argument("app", nargs="?", metavar="MODULE:NAME", help=_APP_HELP)
    check.set_defaults(usage=check)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    ``prog`` is the program name shown in usage: ``python -m sessionkit`` passes its own.
    """
    args = _parser(prog).parse_args(argv)
    if args.command == "check":
        return _check(args.usage, args.app, os.environ)
    for _ in range(args.n):
        sys.stdout.write(generate_key() + "\n")
    return 0


# -- check -------------------------------------------------------------------------------


def weaknesses(kit: SessionKit) -> list[str]:
    """Each way ``kit`` is weaker than sessionkit's secure defaults, with what it costs."""
    found = []
    spec = kit.session_spec
    if kit.insecure_development:
        found.append(
            "insecure_development=True: cookies travel over plain http, without Secure or the "
            "__Host- prefix; for a development machine only"
        )
    if not spec.http_only:
        found.append("http_only=False: page scripts, injected ones too, can read the session")
    if spec.same_site == "none":
        found.append(
            "same_site='none': browsers send the session cookie on cross-site requests too"
        )
    if spec.domain is not None:
        found.append(f"domain={spec.domain!r}: every subdomain receives the session cookie")
    if kit.idle_timeout > DEFAULT_IDLE_TIMEOUT:
        found.append(
            f"idle_timeout={kit.idle_timeout}: over the {_duration(DEFAULT_IDLE_TIMEOUT)} of "
            "inactivity OWASP ASVS level 2 allows"
        )
    if kit.absolute_timeout > DEFAULT_ABSOLUTE_TIMEOUT:
        found.append(
            f"absolute_timeout={kit.absolute_timeout}: over the "
            f"{_duration(DEFAULT_ABSOLUTE_TIMEOUT)} OWASP ASVS level 2 allows a session"
        )
    if kit.rotate_every is None:
        found.append("rotate_every=None: a session id changes only at login and rotate()")
    if kit.client_address == "full":
        found.append("client_address='full': security events record whole client addresses")
    return found


def _check(parser: argparse.ArgumentParser, app: str | None, environ: Mapping[str, str]) -> int:
    out = sys.stdout.write
    try:
        kit = _load(parser, app, environ)
    except ConfigurationError as exc:
        out(f"verdict: refused, this policy would not start: {exc}\n")
        return EXIT_REFUSED
    source = app if app is not None else f"SessionKit.from_env() ({_ENV_KEYS})"
    out(f"policy of {source}\n")
    for label, value in _describe(kit):
        out(f"  {label:<18}{value}\n")
    if kit.store is None:
        out(
            "note: no store, so logout cannot recall a copy of a cookie taken before it, and "
            "revoke_user is unavailable (see sessionkit.stores)\n"
        )
    found = weaknesses(kit)
    for weakness in found:
        out(f"weakness: {weakness}\n")
    if not found:
        out("verdict: sound, no weakness found\n")
        return EXIT_SOUND
    out(f"verdict: weak, {len(found)} weakness{'es' if len(found) > 1 else ''} named above\n")
    return EXIT_WEAK


def _load(
    parser: argparse.ArgumentParser, app: str | None, environ: Mapping[str, str]
) -> SessionKit:
    if app is None:
        return SessionKit.from_env(environ)
    module_name, colon, name = app.partition(":")
    if not colon or not module_name or not name:
        parser.error(f"{app!r} is not MODULE:NAME, as in myapp.settings:kit")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: object = importlib.import_module(module_name)
    except ImportError as exc:
        parser.error(f"cannot import {module_name}: {exc}")
    for part in name.split("."):
        if not hasattr(found, part):
            parser.error(f"{module_name} has no {name}")
        found = getattr(found, part)
    if not isinstance(found, SessionKit) and callable(found):
        found = found()
    if not isinstance(found, SessionKit):
        parser.error(f"{app} is a {type(found).__name__}, not a SessionKit")
    return found


def _describe(kit: SessionKit) -> list[tuple[str, str]]:
    kids = [kid.hex() for kid in kit.keys.key_ids]
    rows = [
        ("keys", f"{len(kids)}, newest first, by key id: {kids[0]} (seals) {' '.join(kids[1:])}"),
        ("session cookie", _cookie(kit.session_spec)),
        (
            "visitor cookie",
            "off"
            if kit.visitor_spec is None
            else f"{_cookie(kit.visitor_spec)}; Max-Age {_duration(kit.visitor_max_age)}",
        ),
        (
            "timeouts",
            f"idle {_duration(kit.idle_timeout)}, absolute {_duration(kit.absolute_timeout)}, "
            f"longest {_duration(kit.max_lifetime)}",
        ),
        (
            "id rotation",
            "on login and rotate() only"
            if kit.rotate_every is None
            else f"every {_duration(kit.rotate_every)}, old id kept "
            f"{_duration(kit.rotation_grace)}",
        ),
        ("store", _store(kit)),
        (
            "cookies required",
            f"on the protected paths, public home {kit.gate.home}" if kit.gate else "nowhere",
        ),
        ("client addresses", kit.client_address),
    ]
    return [(label, value.rstrip()) for label, value in rows]


def _store(kit: SessionKit) -> str:
    store = kit.store
    if store is None:
        return "none (the session lives in its cookie)"
    if isinstance(store, SQLiteStore):
        return f"SQLiteStore({os.path.abspath(store.path)!r})"
    if type(store).__repr__ is object.__repr__:
        return type(store).__name__
    return repr(store)  # RedisStore's leaves any password out


def _cookie(spec: CookieSpec) -> str:
    # The attributes exactly as sent: a Set-Cookie value minus its value.
    return f"{spec.name}; {spec.set('-', None).split('; ', 1)[1]}"


def _duration(seconds: int) -> str:
    if seconds == 86400:
        return "1 day"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
