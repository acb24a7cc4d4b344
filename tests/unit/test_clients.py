"""api/auth/clients.py: which address a request is counted under (no sockets: the environ
gunicorn builds)."""

from __future__ import annotations

import pytest

from api.auth.clients import UNIX_PEER, ClientAddress

TRUSTED = ClientAddress(["127.0.0.1", "::1", "10.0.0.0/8"])


def env(peer: str, forwarded: str | None = None, real: str | None = None) -> dict[str, str]:
    found = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        found["HTTP_X_FORWARDED_FOR"] = forwarded
    if real is not None:
        found["HTTP_X_REAL_IP"] = real
    return found


@pytest.mark.parametrize(("environ", "client"), [
    (env("203.0.113.5"), "203.0.113.5"),
    # an untrusted peer: its headers are not believed
    (env("203.0.113.5", "198.51.100.1", "198.51.100.2"), "203.0.113.5"),
    # a trusted proxy: the nearest untrusted hop, read from the right
    (env("127.0.0.1", "198.51.100.1"), "198.51.100.1"),
    (env("127.0.0.1", "6.6.6.6, 198.51.100.1"), "198.51.100.1"),  # the client's own entry
    (env("127.0.0.1", "198.51.100.1, 10.1.2.3"), "198.51.100.1"),  # through two proxies
    (env("127.0.0.1", "10.1.2.3, 10.4.5.6"), "10.1.2.3"),  # all trusted: the farthest
    (env("127.0.0.1", "garbage, 10.4.5.6"), "10.4.5.6"),  # nothing left of garbage counts
    (env("127.0.0.1", "198.51.100.1:4711"), "198.51.100.1"),
    (env("127.0.0.1", "[2001:db8::1]:4711"), "2001:db8::/64"),
    (env("127.0.0.1", None, "198.51.100.9"), "198.51.100.9"),  # X-Real-IP without XFF
    (env("127.0.0.1", "198.51.100.1", "198.51.100.9"), "198.51.100.1"),  # XFF first
    (env("127.0.0.1"), "127.0.0.1"),  # the proxy itself (or a local client)
    # IPv6 by /64; IPv4-mapped as IPv4
    (env("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64"),
    (env("::ffff:203.0.113.5"), "203.0.113.5"),
    # a Unix socket's peer (nginx on the same machine): local, trusted
    (env("", "198.51.100.1"), "198.51.100.1"),
    (env(""), UNIX_PEER),
])
def test_client_address(environ: dict[str, str], client: str) -> None:
    assert TRUSTED.of(environ) == client


def test_trusting_no_one() -> None:
    nobody = ClientAddress([])
    assert nobody.of(env("127.0.0.1", "198.51.100.1")) == "127.0.0.1"
