"""The package's Celery configuration, re-exported for tools run from this checkout.

The app reads :mod:`tasks.worker.config` itself (``celery -A tasks worker`` needs nothing more);
that module is not installed as a top-level ``celeryconfig``, so a web app with a
``celeryconfig.py`` of its own never shadows ours, nor ours its. Every setting comes from the
environment: the variables are listed in the README (Configuration).
"""

from tasks.worker.config import *  # noqa: F403
