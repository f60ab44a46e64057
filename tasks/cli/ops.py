"""``engage-sms doctor``, ``metrics`` and ``flower``: check a deployment, expose it to operators.

What they serve listens on 127.0.0.1 unless told otherwise, and Flower never starts without a
login: it shows and controls every task and worker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from tasks.cli.exit_codes import ExitCode
from tasks.core.settings import basic_auth_problem

#: Port of the metrics sidecar (workers use ENGAGE_METRICS_PORT, 9100 in docker-compose.yml).
DEFAULT_METRICS_PORT = 9101
#: Flower's own default port.
DEFAULT_FLOWER_PORT = 5555


def add_ops_commands(commands: Any) -> None:
    """Register ``doctor`` and ``metrics`` on the CLI's parser."""
    doctor = commands.add_parser(
        "doctor", help="check settings, Redis, the broker and Engage; exit 0 only if all are OK"
    )
    doctor.set_defaults(handler=_doctor)

    metrics = commands.add_parser(
        "metrics", help="serve Prometheus /metrics: broker queue length, dead letters by reason"
    )
    metrics.add_argument("--port", type=int, default=DEFAULT_METRICS_PORT)
    metrics.add_argument(
        "--host", help="address to listen on (default: ENGAGE_METRICS_ADDRESS, else 127.0.0.1)"
    )
    metrics.set_defaults(handler=_metrics)

    flower = commands.add_parser(
        "flower",
        help="run Flower with the login in FLOWER_BASIC_AUTH (user:password); never without one",
    )
    flower.add_argument("--port", type=int, default=DEFAULT_FLOWER_PORT)
    flower.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    flower.set_defaults(handler=_flower)


def _doctor(_: argparse.Namespace) -> ExitCode:
    from tasks.cli.doctor import run_checks  # noqa: PLC0415  (only this command needs it)

    checks = run_checks(os.environ)
    for check in checks:
        print(check.line(), flush=True)
    failed = [c.name for c in checks if not c.ok]
    warned = [c.name for c in checks if c.warning]
    if failed:
        print(f"doctor: {len(failed)} check(s) not OK: {', '.join(failed)}")
    else:
        print(
            "doctor: all OK" + (f" ({len(warned)} warning: {', '.join(warned)})" if warned else "")
        )
    if {"redis", "broker"} & {c.name for c in checks if c.ok is False}:
        return ExitCode.UNAVAILABLE  # as every command: 4 when Redis or the broker does not answer
    return ExitCode.FAILED if failed else ExitCode.OK


def _metrics(args: argparse.Namespace) -> ExitCode:
    # Imported here: only this command serves metrics (Prometheus client, Redis gauges).
    from tasks.cli.metrics_sidecar import sidecar_registry  # noqa: PLC0415
    from tasks.core.settings import load_settings  # noqa: PLC0415
    from tasks.delivery.metrics import serve  # noqa: PLC0415

    settings = load_settings(os.environ)
    host = args.host or settings.metrics_address
    _, thread = serve(args.port, host=host, registry=sidecar_registry(settings))
    print(f"metrics on http://{host}:{args.port}/metrics", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        thread.join()
    return ExitCode.OK


def _flower(args: argparse.Namespace) -> ExitCode:
    """Exec ``celery -A tasks flower`` once FLOWER_BASIC_AUTH holds a login; else one line, 2."""
    problem = basic_auth_problem(os.environ.get("FLOWER_BASIC_AUTH"))
    if problem is None:
        # The login stays in the environment, where Flower reads FLOWER_BASIC_AUTH itself: on
        # the command line (--basic-auth) any user of this machine could read it with ps.
        argv = [sys.executable, "-m", "celery", "-A", "tasks", "flower"]
        argv += [f"--port={args.port}", f"--address={args.address}"]
        print(f"Flower on http://{args.address}:{args.port} (login: FLOWER_BASIC_AUTH)", flush=True)
        os.execv(sys.executable, argv)  # noqa: S606  (this interpreter, a fixed argv: no shell)
    print(
        f"engage-sms: FLOWER_BASIC_AUTH {problem} (Flower shows and controls every task "
        "and worker: it does not start without a login)",
        file=sys.stderr,
    )
    return ExitCode.USAGE
