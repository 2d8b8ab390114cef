# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench soak clean venv

venv: $(STAMP)

# Reinstall when the project's metadata changes; editable, so code edits need nothing.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m demos.showcase

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pytest bench --benchmark-only --benchmark-columns=min,median,mean,ops -p no:cacheprovider
	$(PY) -m bench.replay_throughput

soak: $(STAMP)
	$(PY) -m pytest -m soak tests

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks build *.egg-info
