# The two commands: `make run` (the whole system) and `make test`. Both install what is
# missing first (deploy/bootstrap.sh) and find or start PostgreSQL and RabbitMQ
# (python3 -m deploy.devstack).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
VAR ?= ./var
PYTEST_ARGS ?=

.PHONY: run test lint bench bench-torch install services stop-services clean

install:
	@bash deploy/bootstrap.sh

run: install
	@bash deploy/run-dev.sh

test:
	@bash deploy/bootstrap.sh --test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench:
	@bash deploy/bootstrap.sh --test
	$(PY) bench/run.py

# bench/frames.py's reference only (never a dependency of videodrop or of its tests): CPU
# torch and torchcodec 0.13 in a virtualenv of their own under var/.
bench-torch:
	python3 -m venv var/bench-torch
	var/bench-torch/bin/pip install torch==2.13.0 torchcodec==0.13.0

services: install
	@$(PY) -m deploy.devstack up --var $(VAR)

stop-services:
	@$(PY) -m deploy.devstack down --var $(VAR)

clean: stop-services
	rm -rf $(VAR)
