"""Benchmarks for sessionkit: ``python -m benchmarks [--quick] [--only SECTIONS]``."""

import sys

from .run import main

sys.exit(main())
