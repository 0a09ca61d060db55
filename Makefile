# Two commands for a fresh machine: `make demo` (install + main job) and `make test` (install + tests).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_SECONDS ?= 120

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: any other torch request pulls GBs of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/emoeye demo --seconds $(DEMO_SECONDS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# One worker process (-n 1): a liblsl crash costs a rerun, not the suite. Timeouts are not
	# rerun; the summary line counts reruns, which should stay at 0.
	$(PY) -m pytest -p no:cacheprovider -n 1 --reruns 2 --rerun-except "Timeout"

bench: $(STAMP)
	$(PY) bench/acquisition.py --seconds 60

clean:
	rm -rf $(VENV) build *.egg-info
