# marketq developer commands. `make up` runs the stack, `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/uv/bin/uv)
PYTEST_WORKERS ?= 2

.PHONY: help
help:  ## list the targets
	@grep -E '^[A-Za-z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

.PHONY: bootstrap-up bootstrap-test
bootstrap-up:  ## install what `make up` needs (uv into .tools/, redis-server)
	@scripts/bootstrap.sh up
bootstrap-test:  ## install what the tests need (uv, redis-server, PostgreSQL, prometheus)
	@scripts/bootstrap.sh test

.PHONY: sync
sync:  ## create/refresh .venv from uv.lock
	@$(UV) sync --frozen --quiet

.PHONY: up
up: bootstrap-up sync  ## run the local stack: Redis (unless MARKETQ_REDIS_URL), migrations, a worker per queue, beat and the API
	@$(UV) run --frozen python scripts/devstack.py

.PHONY: lint
lint: sync  ## ruff lint and format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

.PHONY: typecheck
typecheck: sync  ## mypy --strict on the libraries and the services
	$(UV) run --frozen mypy libs/*/src services/*/src

FAST_TESTS = -m "not integration and not postgres and not slow"

.PHONY: test-fast test-unit
test-fast: sync  ## in-process tests only (no servers, PostgreSQL, subprocesses or helm): under a minute
	$(UV) run --frozen pytest tests/unit $(FAST_TESTS) -q -n 0 -p no:cacheprovider --durations=5

test-unit: bootstrap-test sync  ## tests/unit, every tier (SQLite and a private PostgreSQL, tools, the slow simulation)
	$(UV) run --frozen pytest tests/unit -q -n $(PYTEST_WORKERS)

.PHONY: test-integration
test-integration: bootstrap-test sync  ## real redis-server + celery workers, incl. failure modes
	$(UV) run --frozen pytest tests/integration -q -n $(PYTEST_WORKERS)

.PHONY: test
test: bootstrap-test sync lint typecheck  ## everything: lint, types, then every pytest suite (unit, integration, chart, e2e, observability)
	$(UV) run --frozen pytest -q -n $(PYTEST_WORKERS) --durations=25

.PHONY: fmt
fmt: sync  ## apply ruff fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

.PHONY: bench bench-api bench-metrics bench-worker bench-durability
bench: bench-api bench-metrics bench-worker bench-durability  ## every benchmark in bench/ (ratios against peers, never timed tests)

BENCH_ARGS ?=
# Its own environment (the workspace + the `bench` group): `make sync`/`make test` run
# `uv sync --frozen`, which removes packages outside the default groups from .venv.
BENCH_VENV ?= $(CURDIR)/var/bench-venv
bench-api: bootstrap-up  ## submit API vs Flower and a naive FastAPI; writes docs/performance.md
	@missing=""; for tool in wrk redis-server; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "bench: installing$$missing (apt-get)" >&2; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "bench: missing$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	fi
	@UV_PROJECT_ENVIRONMENT=$(BENCH_VENV) $(UV) sync --frozen --quiet --group bench
	$(BENCH_VENV)/bin/python bench/api_submit.py $(BENCH_ARGS)

.PHONY: helm chart-docs chart-test
helm:  ## fetch helm v4 into .tools/helm (unless helm v4 is on PATH) and print its path
	@scripts/fetch-helm.sh

chart-docs: sync  ## regenerate the chart's values.schema.json, README values table and templates/_catalog.tpl
	$(UV) run --frozen python scripts/chart_values_docs.py

chart-test: sync  ## helm lint/template, schema validation and guards of charts/marketq
	@scripts/fetch-helm.sh >/dev/null
	$(UV) run --frozen pytest tests/chart -q -n 0

.PHONY: test-e2e images lint-images
test-e2e: bootstrap-test sync  ## the chart rendered by helm and run as processes (tests/e2e; kind backend skips without a cluster)
	$(UV) run --frozen pytest tests/e2e -q -n 0 -rs

lint-images: sync  ## hadolint on the Dockerfile, actionlint on the workflows
	.venv/bin/hadolint Dockerfile
	.venv/bin/actionlint

IMAGE_TAG ?= dev
images:  ## docker build marketq-api, marketq-worker, marketq-beat (needs Docker; CI builds them)
	@for service in api worker beat; do \
	  docker build --target $$service -t marketq-$$service:$(IMAGE_TAG) . || exit 1; \
	done

BENCH_WORKER_ARGS ?=
bench-worker: bootstrap-up sync  ## marketq worker vs bare Celery draining no-op runs (SQLite, PostgreSQL); docs/performance.md
	$(UV) run --frozen python bench/worker_drain.py $(BENCH_WORKER_ARGS)

BENCH_METRICS_ARGS ?=
bench-durability: bootstrap-up sync  ## Redis appendfsync always vs everysec: publishes/s and p99; docs/operations.md
	$(UV) run --frozen python bench/broker_durability.py $(BENCH_DURABILITY_ARGS)

bench-metrics: bootstrap-up sync  ## /metrics cost vs queue depth, worker drain with metrics on/off; docs/performance.md
	$(UV) run --frozen python bench/metrics_cost.py $(BENCH_METRICS_ARGS)

.PHONY: clean
clean:  ## remove local state (database, logs, Redis dir)
	rm -rf var

.PHONY: docs
docs: sync  ## regenerate the tables in docs/ that are generated from code
	$(UV) run --frozen python -c "from marketq.common.reference_docs import regenerate; regenerate()"

.PHONY: openapi
openapi: sync  ## regenerate docs/openapi.json from the API (tests/unit/test_openapi.py checks it)
	$(UV) run --frozen python -m tests.unit.test_openapi
