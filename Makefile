# One-command entry points. Everything runs from a local virtualenv (.venv),
# created on first use, so a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The demo needs the package alone, not the test and lint tools.
RUNTIME_STAMP := $(VENV)/.installed-runtime

.PHONY: all venv test lint typecheck unit demo bench bench-quick reliability proto man container-check clean

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP) $(RUNTIME_STAMP)

venv: $(STAMP)

# `make test` later adds the test extras to the same venv ($(STAMP)).
$(RUNTIME_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@touch $(RUNTIME_STAMP)

# ruff (with the private-member rule on src/) and the layer contract of
# [tool.importlinter] in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# pytest exit code 5 ("no tests collected") is a failure here on purpose.
unit: $(STAMP)
	$(BIN)/python -m pytest --cov=dlep.wire --cov=dlep.fsm --cov-report=term --cov-fail-under=95 tests

test: lint typecheck unit

# A modem and a router on loopback (port 8854, no root needed); Ctrl-C stops both.
demo: $(RUNTIME_STAMP)
	$(BIN)/python -m dlep.cli.demo --examples examples

# Every figure the benchmarks print (several minutes; the emulator's needs
# root). QUICK=1 (or `make bench-quick`): the same figures from smaller runs,
# in under a minute. Figures, method and machine: docs/performance.md.
Q := $(if $(QUICK),--quick,)
bench: $(STAMP)
	$(BIN)/python bench/codec.py
	$(BIN)/python bench/ingest.py $(Q)
	$(BIN)/python bench/e2e.py $(Q) $(if $(QUICK),--no-one --repeat 1,)
	$(BIN)/python bench/latency.py $(Q)
	$(BIN)/python bench/subscription.py $(Q)
	$(if $(QUICK),,$(BIN)/python bench/emu.py)

bench-quick:
	$(MAKE) --no-print-directory bench QUICK=1

# Issue 14's reliability suite against the real daemons on loopback: hostile
# inputs, floods, kill -9 cycles; PASS/FAIL per target (about 5 minutes;
# QUICK=1: under a minute). Method and figures: docs/hardening.md.
reliability: $(STAMP)
	$(BIN)/python bench/reliability.py $(Q)

# Regenerate src/dlep/api/_pb from proto/ (grpcio-tools, pinned in the test extra);
# commit the result: tests/api/test_proto.py checks the modules are current.
proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

# Manual pages of dlep-router, dlep-modem, dlepctl and dlep-emu (man/*.1),
# generated from their argparse parsers: `man -l man/dlepctl.1`.
man: $(STAMP)
	$(BIN)/python scripts/gen_man.py --out man

# Replays the Containerfile on the host (no container engine needed; root).
container-check:
	bash scripts/container_check.sh

clean:
	rm -rf man $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
