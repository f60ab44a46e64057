"""``make bench``: what one send costs and how fast sends go, measured on real processes.

One module per phase, run by :mod:`benchmarks.run` (``python -m benchmarks``) in the order of
``--phases`` (default 412356):

1. :mod:`benchmarks.cpu`: worker CPU per delivered message, the full pipeline beside a bare
   chain of two trivial tasks and the chain a user would write with requests
   (:mod:`benchmarks.baseline`) on the same Redis with the same worker settings.
2. :mod:`benchmarks.latency`: messages/s when every Engage call takes 50 ms (rate limit
   lifted), per worker layout (threads per worker, and two workers).
3. :mod:`benchmarks.rate`: messages/s under a 10 requests/s budget with two workers, cold and
   warm contact cache, and the most calls the sandbox saw in any one-second window.
4. :mod:`benchmarks.enqueue`: enqueue latency of ``send_prepared_sms`` from a web process, and
   Redis round trips per call.
5. :mod:`benchmarks.lanes`: priority lanes, urgent (then normal) sends behind a bulk backlog,
   and the same with every send in one lane (:mod:`benchmarks.variants` switches parts off).
6. :mod:`benchmarks.records`: Redis memory of a final ledger record.

:mod:`benchmarks.harness` holds what the phases share (own Redis, sandbox, workers, measuring),
:mod:`benchmarks.targets` the figures they compare against, :mod:`benchmarks.report` the
printing. ``make bench`` then runs :mod:`benchmarks.replicas` (replica acks), and
``make bench-http`` runs :mod:`benchmarks.front_door` (enqueueing over the HTTP front door).
Prints the machine, the figures and their targets; no benchmark is a test: each exits 0
whatever the figures (1 when a phase could not run at all).
"""
