"""``engage-sms doctor`` and ``engage-sms metrics``: check a deployment, expose its Redis gauges."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1
#: Port of the metrics sidecar (workers use ENGAGE_METRICS_PORT, 9100 in docker-compose.yml).
DEFAULT_METRICS_PORT = 9101


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
        "--host",
        default="0.0.0.0",  # noqa: S104  (a sidecar is scraped from outside its container)
        help="address to listen on (default: all)",
    )
    metrics.set_defaults(handler=_metrics)


def _doctor(_: argparse.Namespace) -> int:
    from tasks.cli.doctor import run_checks  # noqa: PLC0415  (only this command needs it)

    checks = run_checks(os.environ)
    for check in checks:
        print(check.line(), flush=True)
    failed = [c.name for c in checks if not c.ok]
    print(
        f"doctor: {len(failed)} check(s) not OK: {', '.join(failed)}"
        if failed
        else "doctor: all OK"
    )
    return EXIT_FAILED if failed else EXIT_OK


def _metrics(args: argparse.Namespace) -> int:
    # Imported here: only this command serves metrics (Prometheus client, Redis gauges).
    from tasks.cli.metrics_sidecar import sidecar_registry  # noqa: PLC0415
    from tasks.delivery.metrics import serve  # noqa: PLC0415
    from tasks.settings import load_settings  # noqa: PLC0415

    registry = sidecar_registry(load_settings(os.environ))
    _, thread = serve(args.port, host=args.host, registry=registry)
    print(f"metrics on http://{args.host}:{args.port}/metrics", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        thread.join()
    return EXIT_OK
