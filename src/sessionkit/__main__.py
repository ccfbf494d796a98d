"""Entry point for ``python -m sessionkit``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main(prog="python -m sessionkit"))
