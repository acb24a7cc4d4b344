# The two commands: `make run` (the whole system) and `make test`. Both install what is
# missing first (deploy/bootstrap.sh) and find or start PostgreSQL and RabbitMQ
# (python3 -m deploy.devstack).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
VAR ?= ./var
PYTEST_ARGS ?=

.PHONY: run test lint bench install services stop-services clean

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

services: install
	@$(PY) -m deploy.devstack up --var $(VAR)

stop-services:
	@$(PY) -m deploy.devstack down --var $(VAR)

clean: stop-services
	rm -rf $(VAR)
