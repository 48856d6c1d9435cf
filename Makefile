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
# (an admin URL), else an embedded pgserver in a temporary folder. `make bench` runs the whole suite into
# a fresh bench/results.json at sizes that take about 11 minutes on 2 cores; issue 8's sizes (about an hour):
#   make bench BENCH_TENANTS=1000 BENCH_OPS_TENANTS=1000 BENCH_IMPORT_ROWS=100000 \
#     BENCH_SEGMENT_CUSTOMERS=1000000 BENCH_SPREAD_TENANTS=1000 BENCH_SCALE_TENANTS=1000
BENCH_TENANTS ?= 200
BENCH_SCALE_TENANTS ?= 300
BENCH_OPS_TENANTS ?= 100
BENCH_IMPORT_ROWS ?= 20000
BENCH_SEGMENT_CUSTOMERS ?= 100000
BENCH_LIST_CUSTOMERS ?= 100000
BENCH_PAGE_CUSTOMERS ?= 20000
BENCH_SPREAD_TENANTS ?= 100
POSTGRAPHILE := bench/postgraphile/node_modules/.package-lock.json

.PHONY: bench
bench: install $(POSTGRAPHILE) ## the benchmark suite of issue 8, end to end, into bench/results.json
	rm -f bench/results.json
	$(BIN)/python bench/tenant_scope.py --tenants $(BENCH_TENANTS)
	$(BIN)/python bench/tenant_scale.py --tenants $(BENCH_SCALE_TENANTS)
	$(BIN)/python bench/tenant_ops.py --tenants $(BENCH_OPS_TENANTS)
	$(BIN)/python bench/import_rows.py --rows $(BENCH_IMPORT_ROWS)
	$(BIN)/python bench/pii_cost.py
	$(BIN)/python bench/segments.py --customers $(BENCH_SEGMENT_CUSTOMERS)
	$(BIN)/python bench/graphql_list.py --customers $(BENCH_LIST_CUSTOMERS)
	$(BIN)/python bench/customer_page.py --customers $(BENCH_PAGE_CUSTOMERS)
	$(BIN)/python bench/spread.py --tenants $(BENCH_SPREAD_TENANTS)
	$(BIN)/python bench/pages.py

# PostGraphile 4, the peer of bench/graphql_list.py, pinned by its package.json and lock file.
$(POSTGRAPHILE): bench/postgraphile/package.json bench/postgraphile/package-lock.json
	cd bench/postgraphile && npm ci --no-audit --no-fund

# One tenant of BENCH_CUSTOMERS customers with their loans; three segment shapes through SegmentService
# against the same filters written by hand in SQL. `make bench-segments BENCH_CUSTOMERS=20000` to try it.
BENCH_CUSTOMERS ?= 1000000

.PHONY: bench-segments
bench-segments: install ## seed one tenant of BENCH_CUSTOMERS customers and time three segment shapes
	$(BIN)/python bench/segments.py --customers $(BENCH_CUSTOMERS)
