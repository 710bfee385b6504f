# mlthon developer targets. `make help` lists them.
PY ?= python3
PKG := mlthon

# The tests that exercise the core's classes (TickBook today), run again with the pure-Python core
# forced (MLTHON_PURE=1) by `make test-pure`; the rest of the suite does not depend on the core.
# (wildcard: a file renamed away drops out instead of failing the run)
PURE_TESTS := tests/unit/basics tests/unit/core tests/unit/feeds $(wildcard \
	tests/unit/gateways/test_sim_*.py tests/unit/gateways/test_fuzz_sim_requests.py \
	tests/unit/infra/test_env_*.py tests/unit/infra/test_book_view*.py \
	tests/integration/app/test_backtest*.py \
	tests/integration/gateways/test_sim_capture_queue.py \
	tests/integration/gateways/test_sim_strategy_parity.py \
	tests/integration/feeds/test_replay_*.py \
	tests/integration/feeds/test_feed_process_parity.py)

.PHONY: help install core fmt lint type test test-int test-pure check bench clean demo

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: ## install mlthon with its test tools (editable; compiles the core when cc is there)
	$(PY) -m pip install -e '.[test]'

core: ## rebuild the compiled core in place after editing mlthon/_core/*.pyx
	$(PY) setup.py -q build_ext --inplace
	$(PY) -m mlthon._core

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

test-pure: ## the core's tests again with the pure-Python core forced (MLTHON_PURE=1)
	MLTHON_PURE=1 $(PY) -m mlthon._core --expect pure
	MLTHON_PURE=1 $(PY) -m pytest -q $(PURE_TESTS)

check: lint type ## everything CI runs: lint, types, all tests, the core's tests on the pure core
	$(PY) -m mlthon._core
	$(PY) -m pytest -q
	$(MAKE) test-pure

bench: ## print the benchmark figures
	$(PY) bench/bench_reactor.py
	-$(PY) bench/bench_core.py
	-$(PY) bench/bench_feed.py
	-$(PY) bench/bench_matching.py
	-$(PY) bench/bench_pipeline.py
	-$(PY) bench/bench_vs_nautilus.py --repeat 3
	-$(PY) bench/bench_events.py --case demo --cache warm
	-$(PY) bench/bench_decode_cache.py
	-$(PY) bench/bench_sweep.py
	-$(PY) bench/bench_memory.py
	-$(PY) bench/bench_live.py
	-$(PY) bench/bench_vs_hftbacktest.py

demo: ## the demo market maker on the embedded synthetic market
	mlthon backtest demo_strat/market_maker.toml

clean: ## remove caches and results
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info results
	rm -f mlthon/_core/*.so mlthon/_core/*.c
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
