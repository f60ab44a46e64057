"""``python -m benchmarks``: the phases of ``make bench`` (see :mod:`benchmarks`)."""

import sys

from benchmarks.run import main

sys.exit(main())
