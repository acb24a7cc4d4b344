"""The ``videodrop`` command. Roles plug in their sub-commands through the
``videodrop.commands`` entry-point group, so this module never imports a role."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from videodrop import __version__, links, logs
from videodrop.catalog import Catalog
from videodrop.errors import CatalogUnavailable, ConfigurationError
from videodrop.migrate import migrate
from videodrop.retention.command import requeue_refusal
from videodrop.settings import Settings, SettingsError
from videodrop.supervisor import run_all

EX_CONFIG = 78  # sysexits.h: configuration error, systemd must not restart us
EX_UNAVAILABLE = 69

Command = Callable[[Settings, list[str]], int]

BUILTIN_HELP = {
    "migrate": "apply database migrations (idempotent)",
    "run": "run every role in one foreground process group (ingest, probers, derive, api)",
    "links": "put the stream links (VIDEODROP_STREAM_LINKS) in step with the catalog",
}
PLUGIN_HELP = {
    "ingest": "watch the inbox and publish finished files",
    "prober": "consume messages, probe files, store the outcome",
    "derive": "make posters, storyboards and scenes of ready videos (VIDEODROP_DERIVE)",
    "probe": "print the normalised metadata of FILE as JSON (no database)",
    "requeue": "probe failed or dead-lettered videos again; --derivatives: derive again",
    "api": "serve the HTTP API with gunicorn",
    "health": "check database, broker, folders and ffprobe (exit 0/1)",
    "upload": "upload FILEs through the API and print their URLs (--wait: follow to ready)",
    "retention": "remove what VIDEODROP_RETENTION_FILE says goes (--dry-run: only print it)",
    "storage": "storage migrate --to s3://bucket/prefix: copy the file store there, verified",
}


def _plugins() -> dict[str, Callable[[], Command]]:
    return {ep.name: ep.load for ep in entry_points(group="videodrop.commands")}


def _migrate(settings: Settings, argv: list[str]) -> int:
    argparse.ArgumentParser(prog="videodrop migrate").parse_args(argv)
    logs.configure(role="migrate", fmt=settings.log_format, level=settings.log_level)
    log = logs.get("videodrop.migrate")
    applied = migrate(settings.database_url)
    log.info("migrated", applied=[f"{m.version:04d}_{m.name}" for m in applied])
    return 0


def _links(settings: Settings, argv: list[str]) -> int:
    argparse.ArgumentParser(prog="videodrop links", description=BUILTIN_HELP["links"]
                            ).parse_args(argv)
    logs.configure(role="links", fmt=settings.log_format, level=settings.log_level)
    sync_links(settings, logs.get("videodrop.links"))
    return 0


def sync_links(settings: Settings, log: Any) -> None:
    """Put VIDEODROP_STREAM_LINKS in step with the catalog and log what it took (nothing
    to do when the setting is not set)."""
    stream_links = links.from_settings(settings)
    if stream_links is None:
        return
    catalog = Catalog.connect(settings.database_url, links=stream_links)
    try:
        made, removed = catalog.sync_links()
    finally:
        catalog.close()
    log.info("stream links in step", folder=str(stream_links.root), made=made,
             removed=removed)


def _run(settings: Settings, argv: list[str]) -> int:
    return run_all(settings, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; a reader that goes away (``videodrop … | head``) ends it quietly with
    the status a shell gives a command killed by SIGPIPE (141)."""
    try:
        return _main(argv)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush finds nothing
        return 141


def _main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {**BUILTIN_HELP, **PLUGIN_HELP}
    if not args or args[0] in {"-h", "--help"}:
        print(f"usage: videodrop COMMAND [ARGS]   (videodrop {__version__})\n")
        for name, text in commands.items():
            print(f"  {name:<9} {text}")
        print("\nSettings come from VIDEODROP_* environment variables (see docs/configuration.md).")
        return 0
    if args[0] == "--version":
        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"videodrop: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    builtin: dict[str, Command] = {"migrate": _migrate, "run": _run, "links": _links}
    try:
        if name in builtin:
            return builtin[name](settings, rest)
        plugins = _plugins()
        if name not in plugins:
            print(f"videodrop: unknown command {name!r}; try 'videodrop --help'", file=sys.stderr)
            return 2
        if name == "requeue" and (refusal := requeue_refusal(settings, rest)):
            print(f"videodrop requeue: {refusal}", file=sys.stderr)
            return 1
        command: Command = plugins[name]()
        return command(settings, rest)
    except ConfigurationError as exc:
        print(f"videodrop {name}: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except CatalogUnavailable as exc:
        print(f"videodrop {name}: database unavailable: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
