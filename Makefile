# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean venv system-deps

venv: $(STAMP)

# Reinstall when the project's metadata or a compiled module's source changes; editable,
# so other code edits need nothing. The compiled modules' sources (.py/.pyx and .pxd) come
# from setup.py's COMPILED list.
COMPILED_SOURCES := $(shell $(PYTHON) setup.py --compiled-sources)

$(STAMP): pyproject.toml setup.py $(COMPILED_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use: chromium for tests/test_browser.py (driven by Playwright
# with executable_path; Playwright's own browser download is never used). Installed only
# as root and only when missing; elsewhere the browser test skips and says why.
system-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "note: chromium is missing and this is not root: tests/test_browser.py will skip"; fi

demo: $(STAMP)
	$(PY) -m demos.showcase

# The suite on the compiled build, then the protocol tests again with every compiled
# module's source run as plain Python (what an install without a C compiler runs; the
# two ten-minute simulations are left to the first run).
PURE_TESTS := tests/test_session.py tests/test_statesync.py tests/test_lockstep.py \
	tests/test_protocol_vectors.py tests/test_fastpath.py tests/test_bits.py

test: $(STAMP) system-deps
	$(PY) -m pytest
	TICKSYNC_PURE=1 $(PY) -m pytest $(PURE_TESTS) -k "not ten_minutes and not minute_five"

# Every benchmark (several minutes): micro benches, then the load scripts' tables.
bench: $(STAMP)
	$(PY) -m pytest bench --benchmark-only --benchmark-columns=min,median,mean,ops -p no:cacheprovider
	$(PY) -m bench.replay_throughput
	$(PY) -m bench.bench_lockstep
	$(PY) -m bench.bench_statesync
	$(PY) -m bench.bench_statesync_loopback
	$(PY) -m bench.bench_udp_transport

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks build *.egg-info
