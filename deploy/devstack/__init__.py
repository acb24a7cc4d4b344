"""Find or start the PostgreSQL and RabbitMQ servers videodrop needs (standard library
only: ``deploy/bootstrap.sh`` runs it before the virtualenv exists).

  python3 -m deploy.devstack up --var ./var     # prints `export VIDEODROP_..._URL=...` lines
  python3 -m deploy.devstack down --var ./var   # stops what `up` started (--purge: data too)
  python3 -m deploy.devstack check postgres|amqp [URL]   # exit 0 when the server answers

Run from the checkout's root. `up` keeps each server whose URL answers and otherwise starts
a throwaway one from the local binaries under VAR/pg or VAR/rabbitmq: detached, its state
kept there so a second `up` reuses it. The tests and the benchmarks import it
(``from deploy import devstack``) for their own throwaway servers.
"""

from __future__ import annotations

from .ensure import (
    DEFAULT_AMQP_URL,
    DEFAULT_DATABASE_URL,
    ensure_amqp,
    ensure_database,
    ensure_postgres,
)
from .postgres import ThrowawayPostgres
from .probes import (
    PG_INSTALL,
    RABBITMQ_INSTALL,
    amqp_answers,
    find_postgres_bindir,
    find_rabbitmq_server,
    postgres_answers,
)
from .rabbitmq import ThrowawayRabbitMQ
from .throwaway import DevstackError, free_port

__all__ = [
    "DEFAULT_AMQP_URL",
    "DEFAULT_DATABASE_URL",
    "PG_INSTALL",
    "RABBITMQ_INSTALL",
    "DevstackError",
    "ThrowawayPostgres",
    "ThrowawayRabbitMQ",
    "amqp_answers",
    "ensure_amqp",
    "ensure_database",
    "ensure_postgres",
    "find_postgres_bindir",
    "find_rabbitmq_server",
    "free_port",
    "postgres_answers",
]
