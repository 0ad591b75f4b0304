# llmhost developer entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
LLMHOST := $(VENV)/bin/llmhost
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PIP_INSTALL := $(PY) -m pip install --disable-pip-version-check -q
# Commands the test suite needs from the system (the engine is built from source by `llmhost setup`).
SYSTEM_COMMANDS := cmake c++ make

.PHONY: help run setup test lint bench clean system-deps browser-deps

help:
	@echo "make run    - install, set up (engine + default model), serve on 127.0.0.1:11436"
	@echo "make setup  - install and run 'llmhost setup'"
	@echo "make test   - system packages if missing, install with test extras, setup, pytest"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - gateway, engine, per-route CPU, cold start and shared-CPU benchmarks (about 8 minutes)"
	@echo "make clean  - remove the venv and caches in this repository"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamp files: pip runs again only when pyproject.toml changes.
$(VENV)/.stamp-run: pyproject.toml | $(PY)
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(PY)
	$(PIP_INSTALL) -e '.[test]'
	touch $@ $(VENV)/.stamp-run

run: system-deps $(VENV)/.stamp-run
	$(LLMHOST) setup
	exec $(LLMHOST) serve

setup: system-deps $(VENV)/.stamp-run
	$(LLMHOST) setup

system-deps:
	@missing=""; \
	for cmd in $(SYSTEM_COMMANDS); do command -v "$$cmd" >/dev/null || missing="$$missing $$cmd"; done; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "missing:$$missing -- not root, skipping apt; install with: sudo apt-get install cmake build-essential"; \
		exit 0; \
	fi; \
	echo "missing:$$missing -- installing cmake build-essential with apt-get"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake build-essential python3-venv

# The browser tests drive Debian's chromium with Playwright (no browser download).
CHROMIUM := /usr/bin/chromium

browser-deps:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "missing $(CHROMIUM) -- not root; install with: sudo apt-get install chromium"; exit 0; fi; \
	echo "installing chromium with apt-get"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

test: system-deps browser-deps $(VENV)/.stamp-test
	$(LLMHOST) setup
	$(PY) -m pytest -q

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

# Each benchmark prints its table (with the issue's targets) and writes JSON to benchmarks/results/.
bench: $(VENV)/.stamp-run
	$(LLMHOST) setup
	$(PY) benchmarks/gateway_overhead.py
	$(PY) benchmarks/engine_vs_direct.py --levels 1,4,8
	$(PY) benchmarks/route_cpu.py
	$(PY) benchmarks/cold_start.py
	$(PY) benchmarks/shared_cpu.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
	find src tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
