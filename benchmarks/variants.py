"""Worker variants for the lanes phase of ``make bench``: what each part of the design buys.

``celery -A benchmarks.variants worker`` is the package's own worker, changed by ``BENCH_VARIANT``:
``round_robin`` fetches from the lanes in kombu's default rotation instead of highest first.
Everything else is the package's configuration. Started by the lanes phase
(``benchmarks/lanes.py``) with the repository on ``PYTHONPATH``.
"""

from __future__ import annotations

import os

from tasks.worker.app import app

__all__ = ["app"]

#: Which part of the design to switch off (a benchmark script reads its own environment).
VARIANT = os.environ.get("BENCH_VARIANT", "")


if VARIANT == "round_robin":
    options = dict(app.conf.broker_transport_options or {})
    options["queue_order_strategy"] = "round_robin"
    app.conf.broker_transport_options = options
elif VARIANT:
    raise SystemExit(f"BENCH_VARIANT: unknown variant {VARIANT!r}")
