# mlthon developer targets. `make help` lists them.
PY ?= python3
PKG := mlthon

.PHONY: help install fmt lint type test test-int check bench clean demo

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: ## install mlthon with its test tools (editable)
	$(PY) -m pip install -e '.[test]'

fmt: ## format the code
	ruff format $(PKG) demo_strat tests bench
	ruff check --fix $(PKG) demo_strat tests bench

lint: ## ruff, no changes
	ruff check $(PKG) demo_strat tests bench
	ruff format --check $(PKG) demo_strat tests bench

type: ## mypy --strict on the package
	mypy $(PKG)

test: ## unit tests (fast)
	$(PY) -m pytest tests/unit -q

test-int: ## integration tests (real mosquitto, processes, recorded data)
	$(PY) -m pytest tests/integration -q

check: lint type ## everything CI runs: lint, types, all tests
	$(PY) -m pytest -q

bench: ## print the benchmark figures
	$(PY) bench/bench_reactor.py
	-$(PY) bench/bench_feed.py
	-$(PY) bench/bench_matching.py
	-$(PY) bench/bench_pipeline.py
	-$(PY) bench/bench_vs_nautilus.py --repeat 3

demo: ## the demo market maker on the embedded synthetic market
	mlthon backtest demo_strat/market_maker.toml

clean: ## remove caches and results
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
