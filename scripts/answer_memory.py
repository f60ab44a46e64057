"""Memory a worker needs to read a hostile answer: a gzip error body that inflates to 1 GiB.

Serves the sandbox (in this process), scripts one ``gzip_bomb`` answer per case, and makes the
call from a fresh interpreter that reports its resident memory before the call and at its peak
(``VmRSS``, ``VmHWM`` from /proc). Prints one line per case::

    .venv/bin/python scripts/answer_memory.py            # 1024 MiB bombs, REST and SOAP
    .venv/bin/python scripts/answer_memory.py --mib 256  # smaller bombs

The issue this answers saw a worker go from 67 MB to 4.26 GB on one such answer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tasks.sandbox import Sandbox

USER, PASSWORD = "api@example.com", "sandbox-password"
#: (transport, operation scripted, status of the bomb)
CASES = (
    ("rest", "message/sendSingle", 400),
    ("rest", "contact/get", 200),
    ("soap", "message/sendSingle", 500),
)

_CALL = """
import json, sys
from tasks.engage import build_client
from tasks.core.request import Identifier
from tasks.core.settings import EngageSettings

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return -1

transport, url, operation = sys.argv[1:4]
engage = EngageSettings(base_url=url, username="{user}", password="{password}", transport=transport)
client = build_client(engage, connect_timeout=5, read_timeout=60)
before = status("VmRSS")
try:
    if operation == "contact/get":
        client.get_contact(Identifier("MOBILE", "48505606707"))
    else:
        client.send_single(23541, 33457, [])
    outcome = "no error"
except Exception as err:  # the figure is what matters; the error is shown
    outcome = f"{{type(err).__name__}}: {{err}}"
print(json.dumps({{"before": before, "peak": status("VmHWM"), "outcome": outcome}}))
"""


def main() -> int:
    """Run each case; print the memory figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mib", type=int, default=1024, help="inflated size of each bomb")
    args = parser.parse_args()
    code = _CALL.format(user=USER, password=PASSWORD)
    root = Path(__file__).resolve().parent.parent
    with Sandbox() as sandbox:
        print(f"gzip bombs of {args.mib} MiB inflated ({len(_bomb(args.mib)) // 1024} KiB sent)")
        for transport, operation, status in CASES:
            sandbox.state.reset()
            sandbox.state.set_faults({"script": {operation: [f"gzip_bomb:{status}:{args.mib}"]}})
            url = sandbox.soap_url if transport == "soap" else sandbox.base_url
            done = subprocess.run(
                [sys.executable, "-c", code, transport, url, operation],
                capture_output=True,
                text=True,
                check=False,
                cwd=root,
            )
            if done.returncode != 0:
                print(f"{transport} {operation} {status}: the call's process failed:")
                print(done.stderr[-2000:])
                return 1
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{transport:4} {operation:18} HTTP {status}: RSS {figures['before']} MB before, "
                f"peak {figures['peak']} MB; {figures['outcome'][:140]}"
            )
    return 0


def _bomb(mib: int) -> bytes:
    from tasks.sandbox.gate import gzip_bomb  # noqa: PLC0415  (only to show its size)

    return gzip_bomb(mib)


if __name__ == "__main__":
    sys.exit(main())
