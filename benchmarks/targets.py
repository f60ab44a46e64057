"""The figures ``make bench`` compares its measurements against, in one place.

Each phase imports what it checks from here; a row of the final table shows the target beside
the value and PASS or MISS. ``docs/benchmarks.md`` explains each target and each known miss.
"""

from __future__ import annotations

#: Engage's documented budget: calls per second across every worker (ENGAGE_RATE_LIMIT's default).
RATE_BUDGET = 10

#: Phase 1: worker CPU per message, pipeline over the bare chain of two trivial tasks.
CPU_RATIO_TARGET = 1.3
#: Phase 1: worker CPU per message, pipeline over the chain a user would write with requests.
REQUESTS_RATIO_TARGET = 1.25

#: Phase 2: messages/s of the best worker layout when every Engage call takes 50 ms.
LATENCY_RATE_TARGET = 150.0

#: Phase 3: messages/s under the budget with a cold contact cache (two calls per message).
COLD_RATE_TARGET = 4.5
#: Phase 3: messages/s under the budget with a warm contact cache (one call per message).
WARM_RATE_TARGET = 9.0

#: Phase 4: median latency of ``send_prepared_sms`` in a web process, milliseconds.
ENQUEUE_MEDIAN_TARGET_MS = 1.0

#: Phase 5: p99 seconds from an urgent send's enqueue to its sendSingle behind a bulk backlog.
URGENT_P99_TARGET = 1.0
#: Phase 5: the least share of the budget the urgent sends left that the bulk backlog still uses.
BULK_SHARE_TARGET = 0.90

#: Phase 6: the most Redis memory (``MEMORY USAGE``, bytes) a final ledger record keeps: 0.35 KB.
RECORD_BYTES_TARGET = 358
