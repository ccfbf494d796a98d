"""Command line: ``python -m sessionkit keygen`` prints a fresh secret key."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .keys import generate_key

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = argparse.ArgumentParser(prog="python -m sessionkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="print a new secret key (32 random bytes)")
    keygen.add_argument("-n", type=int, default=1, help="how many keys to print (default 1)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("-n must be at least 1")
    for _ in range(args.n):
        sys.stdout.write(generate_key() + "\n")
    return 0
