# Microtask Engine. Needs only python3 (>=3.11) and make: everything else is installed here.
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
PY := .venv/bin/python

.PHONY: run test bench chaos env lock asyncapi migration web clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

env: $(UV)
	$(UV) sync --all-packages --frozen --quiet

run: env ## the whole stack on this machine: PostgreSQL and nats-server from wheels, every service, the gateway
	$(PY) -m launcher

test: env ## unit, integration, end-to-end and browser tests (their own PostgreSQL and nats-server)
	$(PY) -m pytest -q -n 2 --dist loadfile  # two workers, a test file each: most tests wait

bench: env ## every issue-15 figure with its target, baselines of the same run (about 8 min alone)
	$(PY) -m bench

chaos: env ## the long fault suite: 40 kills -9 under load on one server, then 40 on a 3-node cluster with stream-leader kills; the money invariants (JSON reports)
	$(PY) -m bench.chaos --seconds 240 --kills 40
	$(PY) -m bench.chaos --seconds 240 --kills 40 --cluster

lock: $(UV)
	$(UV) lock

web: env ## rebuild the web UI (services/gateway/frontend) into the gateway package
	cd services/gateway/frontend && PATH="$(CURDIR)/.venv/bin:$$PATH" npm ci --no-audit --no-fund && PATH="$(CURDIR)/.venv/bin:$$PATH" npm run build

asyncapi: env ## regenerate docs/asyncapi.json from contracts
	$(PY) -m contracts.asyncapi > docs/asyncapi.json

migration: env ## make migration SVC=tasks MSG="add x": autogenerate a revision for one service
	$(PY) -m launcher.autogen $(SVC) "$(MSG)"

clean:
	rm -rf .venv $(TOOLS) data
