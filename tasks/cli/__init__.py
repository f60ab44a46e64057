"""``engage-sms``: the command line (send and status, dead letters, doctor, metrics, demo).

Commands import what they need when they run: ``engage-sms sandbox`` never loads Celery, and
``send`` reads the configuration only once its arguments are valid.
"""

from tasks.cli.main import EXIT_OK, EXIT_USAGE, main

__all__ = ["EXIT_OK", "EXIT_USAGE", "main"]
