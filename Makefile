# The two entry points: `make repro` runs the pipeline, `make test` runs the tests.
# Both create .venv and install the pinned versions (constraints.txt) when needed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: repro test test-soak install install-dev bench clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(PY):
	python3 -m venv $(VENV)

$(VENV)/.installed: $(PY) pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[dev,ray]"
	touch $@

install: $(VENV)/.installed  ## create .venv and install the pipeline

install-dev: $(VENV)/.installed-dev  ## ... plus the test tools and the Ray extra

repro: install  ## run the whole DVC pipeline (dvc repro)
	$(VENV)/bin/dvc repro

test: install-dev  ## run the test suite (minutes), without the soak tests, one worker per core (at most 4)
	$(PY) -m pytest -m "not soak" -n auto --maxprocesses 4 --dist loadfile --durations=15

test-soak: install-dev  ## the soak tests: kill -9 of every stage, DVC queue side by side, Ray clusters
	$(PY) -m pytest -m soak

bench: install  ## measure speed and memory (python -m pipeline.bench)
	$(PY) -m pipeline.bench

clean:  ## remove the virtualenv
	rm -rf $(VENV)
