# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HTMX := web/static/vendor/htmx.min.js
ECHARTS := web/static/vendor/echarts.min.js

.PHONY: run test install assets lint format schema clean

run: install ## install, start the embedded database, seed the demo tenant, serve
	$(BIN)/tenantcrm demo

test: install ## install and run the whole suite
	$(BIN)/pytest

install: $(INSTALLED) assets

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

assets: $(HTMX) $(ECHARTS)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

$(HTMX): web/node_modules/.package-lock.json
	mkdir -p $(dir $@)
	cp web/node_modules/htmx.org/dist/htmx.min.js $@

# The "common" build: line, bar and pie charts with their components, a third of the full size.
$(ECHARTS): web/node_modules/.package-lock.json
	mkdir -p $(dir $@)
	cp web/node_modules/echarts/dist/echarts.common.min.js $@

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

schema: install ## rewrite graphql/schema.graphql from the code
	$(BIN)/tenantcrm graphql-schema --write

clean:
	rm -rf $(VENV) web/node_modules web/static/vendor

# Benchmarks: JSON on stdout, merged into bench/results.json. Bench server: TENANTCRM_BENCH_DATABASE_URL
# (an admin URL), else an embedded pgserver in a temporary folder. `make bench BENCH_TENANTS=1000`.
BENCH_TENANTS ?= 200

.PHONY: bench
bench: install ## provision tenants in a scratch database and measure tenant scoping
	$(BIN)/python bench/tenant_scope.py --tenants $(BENCH_TENANTS)

# One tenant of BENCH_CUSTOMERS customers with their loans; three segment shapes through SegmentService
# against the same filters written by hand in SQL. `make bench-segments BENCH_CUSTOMERS=20000` to try it.
BENCH_CUSTOMERS ?= 1000000

.PHONY: bench-segments
bench-segments: install ## seed one tenant of BENCH_CUSTOMERS customers and time three segment shapes
	$(BIN)/python bench/segments.py --customers $(BENCH_CUSTOMERS)
