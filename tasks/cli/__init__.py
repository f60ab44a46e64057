"""``engage-sms``: the command line (send and status, dead letters, doctor, metrics, demo).

Commands import what they need when they run: ``engage-sms sandbox`` never loads Celery, and
``send`` reads the configuration only once its arguments are valid.
"""

from tasks.cli.exit_codes import ExitCode
from tasks.cli.main import main

__all__ = ["ExitCode", "main"]
