# Every target creates .venv and installs the pinned dependencies first, so a fresh
# machine with Python 3.11 needs nothing but `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint format clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shopbridge demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Set SHOPBRIDGE_BENCH_DATABASE_URL to a PostgreSQL URL to measure the distributed mode too.
bench: $(STAMP)
	$(BIN)/shopbridge bench engine --json bench/results/engine.json $(BENCH_ARGS) \
		$(if $(SHOPBRIDGE_BENCH_DATABASE_URL),--database-url $(SHOPBRIDGE_BENCH_DATABASE_URL))
	$(BIN)/shopbridge bench dashboard --json bench/results/dashboard.json $(BENCH_ARGS) \
		$(if $(SHOPBRIDGE_BENCH_DATABASE_URL),--database-url $(SHOPBRIDGE_BENCH_DATABASE_URL))
	$(BIN)/shopbridge bench orders --json bench/results/orders.json $(BENCH_ARGS)
	$(BIN)/shopbridge bench flash-sale --json bench/results/flash_sale.json \
		--chart docs/img/flash-sale-quantity.svg $(BENCH_ARGS)
	$(BIN)/shopbridge bench store-loop --json bench/results/store_loop.json $(BENCH_ARGS)
	$(BIN)/shopbridge bench pos --json bench/results/pos.json $(BENCH_ARGS)
	$(BIN)/shopbridge bench finance --json bench/results/finance.json $(BENCH_ARGS) \
		$(if $(SHOPBRIDGE_BENCH_DATABASE_URL),--database-url $(SHOPBRIDGE_BENCH_DATABASE_URL))

# The dashboard screenshots in docs/screenshots, taken by the browser tests in Debian's chromium.
screenshots: $(STAMP)
	SHOPBRIDGE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q -p no:xdist tests/integration/browser

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src/

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
