"""VIDEODROP_AMQP_URL: one AMQP URL, or several separated by commas (the nodes of one
RabbitMQ cluster, tried in turn: docs/several-hosts.md)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SCHEMES = ("amqp", "amqps")


class AmqpUrlError(ValueError):
    """VIDEODROP_AMQP_URL cannot be used; the message names the setting and shows no
    password."""


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: for messages and logs."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def split_amqp_urls(raw: str) -> tuple[str, ...]:
    """The URLs of ``raw`` (comma-separated, blanks around them ignored), in its order.

    Each must be ``amqp://`` or ``amqps://`` with a host and, when given, a port 1-65535;
    a comma inside one (a password, a query option) must be written ``%2C``. Raises
    :class:`AmqpUrlError` naming VIDEODROP_AMQP_URL, the URL's position and the problem,
    the URL shown without its password."""
    urls = tuple(u.strip() for u in raw.split(","))
    if not any(urls):
        raise AmqpUrlError("VIDEODROP_AMQP_URL is empty: give amqp://user:password@host:5672/"
                           "vhost, or several such URLs separated by commas")
    for i, url in enumerate(urls, 1):
        where = f"VIDEODROP_AMQP_URL (URL {i} of {len(urls)})" if len(urls) > 1 \
            else "VIDEODROP_AMQP_URL"
        if not url:
            raise AmqpUrlError(f"{where} is empty: remove the extra comma")
        problem = _problem(url)
        if problem:
            raise AmqpUrlError(f"{where} {redact(url)!r}: {problem}")
    if len(set(urls)) != len(urls):
        raise AmqpUrlError("VIDEODROP_AMQP_URL names the same URL twice")
    return urls


def _problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in SCHEMES:
        return "must start with amqp:// or amqps://"
    if not parts.hostname:
        return "names no host"
    if port == 0:
        return "port must be 1-65535"
    return None


__all__ = ["AmqpUrlError", "redact", "split_amqp_urls"]
