"""Test hook: this interpreter's wall clock runs ``ENGAGE_TEST_CLOCK_SKEW`` seconds off.

A worker on a host whose clock is wrong. Python imports ``sitecustomize`` at start when this
directory is on ``PYTHONPATH`` (:func:`tests.support.skewed_clock.skewed`); the package itself
never reads the variable. Before anything else is imported, so ``from time import time`` in
kombu and Celery gets the skewed clock too, as it would on such a host.
"""

import os
import time

_skew = float(os.environ.get("ENGAGE_TEST_CLOCK_SKEW") or 0)
if _skew:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _skew
    time.time_ns = lambda: _time_ns() + int(_skew * 1_000_000_000)
