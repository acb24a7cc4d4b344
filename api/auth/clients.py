"""Who sent a request: the client address the login throttle counts by.

The TCP peer (``REMOTE_ADDR``) is the client, unless it is a trusted proxy
(VIDEODROP_TRUSTED_PROXIES: addresses or networks; by default loopback, where nginx runs
in ``deploy/``; a Unix-socket peer is local and trusted too). Then the client is named by
the proxy in ``X-Forwarded-For``, read from the right (the proxy's own entry is the last
one; whatever is left of it was sent by the client itself and proves nothing): the first
address that is not a trusted proxy. Without ``X-Forwarded-For``, ``X-Real-IP``. A client
that talks to the API directly cannot choose its address with these headers: they are
read only when the peer is trusted.

Addresses are reduced to what one client holds: an IPv6 address to its /64 (a host gets a
whole /64 and can pick any address in it), an IPv4-mapped IPv6 address to its IPv4.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
UNIX_PEER = "unix"  # what a request over a Unix socket is counted as, with no header


def parse(text: str) -> IPAddress | None:
    """An address as proxies write it (``1.2.3.4``, ``2001:db8::1``, ``[2001:db8::1]:443``,
    ``1.2.3.4:5678``); None when it is not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_key(address: IPAddress) -> str:
    """What the throttle counts: an IPv4 address, or an IPv6 address's /64."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ClientAddress:
    """``of(environ)``: the client of a request, as a throttle key (module docstring)."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def of(self, env: Mapping[str, Any]) -> str:
        peer = parse(env.get("REMOTE_ADDR") or "")  # None: a Unix socket's peer
        if peer is not None and not self.trusted(peer):
            return client_key(peer)
        named = self._forwarded(env.get("HTTP_X_FORWARDED_FOR") or "")
        if named is None:
            named = parse(env.get("HTTP_X_REAL_IP") or "")
        if named is not None:
            return client_key(named)
        return client_key(peer) if peer is not None else UNIX_PEER

    def _forwarded(self, header: str) -> IPAddress | None:
        """The nearest hop of ``X-Forwarded-For`` that is not a trusted proxy; the farthest
        trusted one if all are; None without a readable hop."""
        last: IPAddress | None = None
        for hop in reversed(header.split(",")):
            address = parse(hop)
            if address is None:
                return last  # not an address: nothing to its left can be believed
            if not self.trusted(address):
                return address
            last = address
        return last
