# The two commands of the README: `make demo` and `make test`. Both set up what they need
# (tools/setup.sh: Debian's R, Slurm and Chromium packages when missing, the pinned venv .venv).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
# the checkout's package first, also for scripts run by snakemake
export PYTHONPATH := $(CURDIR)/src
export PATH := $(BIN):$(PATH)
CORES ?= 2
PYTEST_ARGS ?=
# pytest-xdist workers of `make test` (0: one process; tests/conftest.py orders the modules)
TEST_WORKERS ?= 2

.PHONY: help setup demo test lint bench clean

help:
	@echo "make demo   run the whole pipeline on the synthetic multi-center cohort (CPU)"
	@echo "make test   run the test suite (with snakefmt --check and snakemake --lint)"
	@echo "make bench  run the benchmarks in bench/ (JSON under bench/results/)"
	@echo "make setup  only install (idempotent): R, Slurm and Chromium from Debian, .venv"

setup:
	@tools/setup.sh

# `mtnet run` is snakemake under a supervisor: after a kill, the same command resumes (a dead
# run's lock is cleared, never a live run's; the killed run's jobs are stopped; the jobs it
# interrupted are rerun by --rerun-incomplete)
demo: setup
	mtnet run --cores $(CORES) --rerun-incomplete
	# the run's last rule wrote results/provenance/manifest.json; the report comes after it
	mtnet run --cores $(CORES) --report results/report.html
	mtnet audit results
	@echo
	@echo "Results: $(CURDIR)/results/ (stats/, figures/, tables/, checklist/, provenance/, ...)"
	@echo "Report:  $(CURDIR)/results/report.html"
	@echo "Check:   mtnet audit results   (mtnet audit --rerun results: rerun and compare)"
	@echo "The cohort is synthetic (config/config.yaml, preset demo): so are these results."

lint: setup
	snakefmt --check .
	snakemake --lint

test: setup lint
	pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

bench: setup
	python bench/run_all.py

clean:
	rm -rf results .snakemake bench/results
