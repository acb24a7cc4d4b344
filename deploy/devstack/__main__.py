"""``python3 -m deploy.devstack up|down|check``: find or start videodrop's servers."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

from .ensure import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, ensure_amqp, ensure_postgres
from .postgres import ThrowawayPostgres
from .probes import amqp_answers, postgres_answers
from .rabbitmq import ThrowawayRabbitMQ
from .throwaway import DevstackError, log


def cmd_up(var: Path) -> int:
    var.mkdir(parents=True, exist_ok=True)
    exports, problems = [], []
    for name, default, ensure in (
        ("VIDEODROP_DATABASE_URL", DEFAULT_DATABASE_URL, ensure_postgres),
        ("VIDEODROP_AMQP_URL", DEFAULT_AMQP_URL, ensure_amqp),
    ):
        try:
            url = ensure(os.environ.get(name) or default, var)
            exports.append(f"export {name}={shlex.quote(url)}")
        except DevstackError as exc:
            problems.append(str(exc))
    for problem in problems:
        log(problem)
    if not problems:
        print("\n".join(exports), flush=True)
    return 1 if problems else 0


def cmd_down(var: Path, purge: bool) -> int:
    if (var / "pg" / "throwaway.json").exists():
        ThrowawayPostgres(var / "pg").stop()
        log(f"stopped the throwaway PostgreSQL under {var / 'pg'}")
    if (var / "rabbitmq" / "node.json").exists():
        ThrowawayRabbitMQ(var / "rabbitmq").stop()
        log(f"stopped the throwaway RabbitMQ under {var / 'rabbitmq'}")
    for sub in ("pg", "rabbitmq") if purge else ():
        shutil.rmtree(var / sub, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m deploy.devstack",
                                     description="Find or start videodrop's servers.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down"):
        sub = commands.add_parser(name)
        sub.add_argument("--var", type=Path, default=Path("var"), help="state directory")
        if name == "down":
            sub.add_argument("--purge", action="store_true", help="delete their data too")
    check = commands.add_parser("check", help="exit 0 when the server answers")
    check.add_argument("kind", choices=["postgres", "amqp"])
    check.add_argument("url", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return cmd_up(args.var.absolute())
        if args.command == "down":
            return cmd_down(args.var.absolute(), args.purge)
        if args.kind == "postgres":
            url = args.url or os.environ.get("VIDEODROP_DATABASE_URL") or DEFAULT_DATABASE_URL
            return 0 if postgres_answers(url) else 1
        url = args.url or os.environ.get("VIDEODROP_AMQP_URL") or DEFAULT_AMQP_URL
        return 0 if amqp_answers(url) else 1
    except DevstackError as exc:
        log(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
