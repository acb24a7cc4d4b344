"""``videodrop api``: gunicorn serving ``api.app:get_app()``.

Worker class ``api.worker.ArrivedRequestWorker``, gunicorn's gthread with the request read
in its main loop: each worker process serves several connections on threads, so a few
slow clients streaming a large file cannot pin every worker the way they pin sync workers,
and a thread is given to a connection only once its request has arrived, so clients that
send slowly or not at all hold none; sendfile() still moves the bytes (it runs in the
thread, outside the GIL). The API refuses to start with a guessable admin token (exit
78)."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys

from api.auth.credential import weak_token
from videodrop import logs
from videodrop.cli import sync_links
from videodrop.errors import CatalogUnavailable, ConfigurationError
from videodrop.settings import Settings


def gunicorn_argv(settings: Settings, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "api.app:get_app()",
        "-c", "python:api.gunicorn_conf",  # systemd notify + multiprocess metrics
        "--bind", settings.bind,
        "--worker-class", "api.worker.ArrivedRequestWorker",  # gthread, reading requests first
        "--workers", str(settings.api_workers),
        "--threads", str(settings.api_threads),
        "--timeout", "60",
        "--graceful-timeout", "20",
        "--keep-alive", "5",
        "--error-logfile", "-",
        "--name", "videodrop-api",
        "--no-control-socket",  # gunicorn 27's admin socket in $HOME: one per user, unneeded
        *extra,
    ]


def main(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="videodrop api",
                                     description="serve the HTTP API (gunicorn)")
    _, extra = parser.parse_known_args(argv)
    if problem := weak_token(settings.admin_token) or settings.store_in_use_problem("api"):
        raise ConfigurationError(problem)  # exit 78: systemd does not restart
    refuse_taken_address(settings.bind)  # exit 78, not a restart loop on a taken port
    settings.inbox.mkdir(parents=True, exist_ok=True)
    if settings.stream_links is not None:
        _sync_stream_links(settings)
    args = gunicorn_argv(settings, extra)
    os.execv(sys.executable, args)  # noqa: S606 - replaces this process with gunicorn
    return 0  # not reached


def refuse_taken_address(bind: str) -> None:
    """ConfigurationError when ``bind`` (``HOST:PORT``, ``[V6]:PORT`` or ``unix:PATH``) is
    already served by another process: gunicorn would exit 1 after five tries, and a
    service manager would restart it forever. A unix socket path is left to gunicorn."""
    if bind.startswith(("unix:", "fd://")):
        return
    host, _, port_text = bind.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # gunicorn's own default for ":PORT"
    try:
        port = int(port_text)
    except ValueError:
        return  # gunicorn reports a malformed address itself
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return
            raise ConfigurationError(
                f"cannot listen on {bind}: the address is in use by another process "
                f"(another videodrop api?); stop it or set VIDEODROP_BIND") from exc


def _sync_stream_links(settings: Settings) -> None:
    """Before serving: the stream links in step with the catalog (changes made while no
    API listened). Without the database the API starts anyway: links are only removed
    by then, never wrongly kept, except for changes made by hand meanwhile."""
    logs.configure(role="api", fmt=settings.log_format, level=settings.log_level)
    log = logs.get("api.links")
    try:
        sync_links(settings, log)
    except (CatalogUnavailable, OSError) as exc:
        log.warning("stream links not checked: run 'videodrop links' once the database"
                    " answers", error=str(exc))
