"""How much Redis memory a finished send's ledger record keeps (``MEMORY USAGE``).

Runs sends in this process through the real delivery steps, against the local Engage sandbox
and a ``redis-server`` of its own (free port, throwaway directory), then measures each final
record: sent, and the sending policy's expired, capped and suppressed. Prints the figures;
``make bench`` prints them too (phase 6, ``benchmarks/records.py``). Target: at most 0.35 KB
(``benchmarks/targets.py``: 358 bytes).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.targets import RECORD_BYTES_TARGET as TARGET_BYTES  # noqa: E402
from tasks.cli.redis_server import RedisServer  # noqa: E402
from tasks.core.request import build_send_request  # noqa: E402
from tasks.core.send_options import Priority  # noqa: E402
from tasks.core.settings import load_settings  # noqa: E402
from tasks.delivery import steps  # noqa: E402
from tasks.delivery.outcomes import Resolved, Sent  # noqa: E402
from tasks.delivery.runtime import Runtime  # noqa: E402
from tasks.delivery.steps import StepContext  # noqa: E402
from tasks.sandbox import Sandbox, SandboxState  # noqa: E402
from tasks.state.enums import SendState  # noqa: E402
from tasks.state.ledger import ClaimPolicy  # noqa: E402

SENDS = 200


def measure(redis_url: str, base_url: str, sends: int = SENDS) -> dict[str, list[int]]:
    """MEMORY USAGE of final records by state, after ``sends`` sends through the steps."""
    settings = load_settings(
        {
            "ENGAGE_BASE_URL": base_url,
            "ENGAGE_USERNAME": "api@example.com",
            "ENGAGE_PASSWORD": "sandbox-password",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "ENGAGE_RATE_LIMIT": "0",
            "ENGAGE_KEY_PREFIX": "recordsize",
        }
    )
    client = redis.Redis.from_url(redis_url)
    rt = Runtime.build(settings, redis_client=client)
    sizes: dict[str, list[int]] = {}
    for n in range(sends):
        key = f"order-{n:06d}-shipped"
        request = build_send_request(
            23541, mobile="+48505606707", parameters={"firstName": "Ann", "code": f"{n:06d}"}
        )
        task_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
        with_callback = n % 2 == 1
        rt.ledger.claim(
            key,
            request,
            task_ids,
            on_done="myapp.tasks.sms_finished" if with_callback else None,
            policy=ClaimPolicy(expires_in=86400.0),
        )
        ctx = StepContext(
            key=key, task_id=task_ids[1], retries=0, task_ids=task_ids, priority=Priority.NORMAL
        )
        found = steps.resolve(rt, request, ctx)
        assert isinstance(found, Resolved)
        assert isinstance(steps.send(rt, request, found.contact_id, ctx), Sent)
        label = "sent (with a callback)" if with_callback else "sent"
        sizes.setdefault(label, []).append(int(client.memory_usage(rt.keys.send(key)) or 0))
    for state in (SendState.EXPIRED, SendState.CAPPED):
        for n in range(20):
            key = f"order-{n:06d}-{state}"
            request = build_send_request(23541, mobile="+48505606707", parameters={"code": "1"})
            rt.ledger.claim(key, request, ["r" * 36, "s" * 36], policy=ClaimPolicy())
            rt.gate.finish(key, state, "measured")
            sizes.setdefault(str(state), []).append(
                int(client.memory_usage(rt.keys.send(key)) or 0)
            )
    # Opted out at enqueue: final at the claim, which never stores the request.
    opted_out = build_send_request(23541, mobile="+48600700800", parameters={"code": "1"})
    rt.suppressions.add([opted_out.identifier])
    digest = rt.suppressions.digest(opted_out.identifier)
    for n in range(20):
        key = f"order-{n:06d}-suppressed"
        rt.ledger.claim(
            key,
            opted_out,
            ["r" * 36, "s" * 36],
            on_done="myapp.tasks.sms_finished",
            policy=ClaimPolicy(suppression=digest),
        )
        sizes.setdefault("suppressed", []).append(int(client.memory_usage(rt.keys.send(key)) or 0))
    return sizes


def run() -> dict[str, list[int]]:
    """:func:`measure` on a Redis server and a sandbox of its own, both stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="engage-record-size-") as data:
        server = RedisServer(Path(data), persistent=False).start()
        try:
            with Sandbox(SandboxState()) as sandbox:
                return measure(f"redis://127.0.0.1:{server.port}/0", sandbox.base_url)
        finally:
            server.stop()


def report(sizes: dict[str, list[int]]) -> list[str]:
    """One line per final state: median and largest record, against the target."""
    lines = []
    for state, values in sizes.items():
        worst = max(values)
        verdict = "met" if worst <= TARGET_BYTES else "MISSED"
        lines.append(
            f"final {state} record by MEMORY USAGE: median {statistics.median(values):.0f} B, "
            f"max {worst} B (target <= {TARGET_BYTES} B = 0.35 KB: {verdict})"
        )
    return lines


def main() -> int:
    """Print the figures; exit 1 when a record is over the target."""
    sizes = run()
    for line in report(sizes):
        print(line)
    return 0 if all(max(v) <= TARGET_BYTES for v in sizes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
