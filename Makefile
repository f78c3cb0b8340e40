# The two commands the README promises: `make serve` and `make test`. Both install what they need.
UV := python3 -m uv
PYTHON_OK := $(shell python3 -c 'import sys; print(int(sys.version_info >= (3, 11)))')

.PHONY: serve test test-fast lint browser bench uv

uv:
	@test "$(PYTHON_OK)" = 1 || { echo "datagate needs Python >= 3.11 as python3"; exit 2; }
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

serve: uv
	$(UV) run --frozen --no-dev datagate serve

lint: uv
	$(UV) sync --frozen --quiet
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy app

# Browser tests drive Debian's chromium; install it when we can (root on Debian), else they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: browser tests will be skipped"; }

# The whole suite; -v names each test as it finishes (with the share done), and the slowest
# 25 are listed at the end, so a long run can be followed and its slow spots seen.
test: uv lint browser
	$(UV) run --frozen pytest -v --durations=25

# Unit and in-process API tests: no browser, no separate server process, no killed processes,
# nothing marked slow (markers in pyproject.toml). A few minutes; `make test` stays the gate.
FAST_TESTS := not browser and not slow and not process and not fault
test-fast: uv
	$(UV) sync --frozen --quiet
	$(UV) run --frozen pytest -m "$(FAST_TESTS)" -q --durations=10

# By hand only: minutes of CPU; copy the tables it prints into bench/RESULTS.md.
bench: uv
	$(UV) run --frozen python -m bench.service_path
	$(UV) run --frozen python -m bench.leakage_drift_path
	$(UV) run --frozen python -m bench.bench_sql
	$(UV) run --frozen python -m bench.bench_throughput
