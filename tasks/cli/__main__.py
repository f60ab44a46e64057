"""``python -m tasks.cli``: the same as ``engage-sms``."""

import sys

from tasks.cli.main import main

sys.exit(main())
