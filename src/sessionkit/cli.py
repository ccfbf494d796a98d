"""The sessionkit command line: print fresh secret keys, or the version."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .keys import KEY_BYTES, generate_key

__all__ = ["main"]

#: The program name in usage and errors when run as the ``sessionkit`` console script.
PROG = "sessionkit"

_DESCRIPTION = "The command line of sessionkit, cookie and session security middleware."
_KEYGEN_HELP = (
    f"print new secret keys ({KEY_BYTES} random bytes each, base64url), one a line; "
    "list them, newest first, in SESSIONKIT_SECRET_KEYS"
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
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    ``prog`` is the program name shown in usage: ``python -m sessionkit`` passes its own.
    """
    args = _parser(prog).parse_args(argv)
    for _ in range(args.n):
        sys.stdout.write(generate_key() + "\n")
    return 0
