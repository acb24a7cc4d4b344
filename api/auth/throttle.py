"""The login throttle: wrong admin tokens per client address (``POST /login`` and
``Authorization: Bearer`` on the management API alike).

A client address (api/auth/clients.py) may send ``burst`` wrong tokens at once
(VIDEODROP_LOGIN_BURST), then ``per_minute`` a minute (VIDEODROP_LOGIN_RATE); beyond that
it is answered 429 with ``Retry-After`` before its token is even compared, the right token
included. The count is a GCRA in PostgreSQL (videodrop/websessions.py): each wrong token
moves the client's ``paid_at`` one interval (60 / per_minute seconds) further; the client is
refused while ``paid_at`` is more than ``burst - 1`` intervals ahead. Every worker and
machine adds to the same row, so the long-run rate holds however many serve the client.

A right token costs nothing here but a look into this worker's memory: what a wrong token's
count returned is kept per worker as "refused until". So another worker, or requests
already under way, can let a few more tokens be compared at the moment a client runs out
(at most one per worker, plus the requests in flight), each of which pushes its
``paid_at`` further; the rate over time is kept.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable

import falcon

from videodrop import logs
from videodrop.errors import CatalogUnavailable
from videodrop.websessions import LoginStore

FORGET_EVERY = 256  # wrong tokens between two clean-ups of paid-off rows (per worker)
MAX_REMEMBERED = 10_000  # clients kept in a worker's memory before the expired ones go


class Throttled(falcon.HTTPTooManyRequests):
    """429 with Retry-After: this client sent too many wrong admin tokens."""

    def __init__(self, seconds: float) -> None:
        wait = max(1, math.ceil(seconds))
        super().__init__(title="Too many wrong tokens",
                         description=f"Too many wrong admin tokens from this address; try"
                                     f" again in {wait} s.", retry_after=wait)
        self.wait = wait


class LoginThrottle:
    def __init__(self, store: LoginStore, burst: int, per_minute: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.interval = 60.0 / per_minute
        self.allowance = (burst - 1) * self.interval  # how far ahead paid_at may be
        self.clock = clock
        self.refused_until: dict[str, float] = {}
        self.failures = 0
        self.log = logs.get("api.throttle")

    def check(self, client: str) -> None:
        """Before a token is compared: raises :class:`Throttled` while ``client`` is over
        its budget (as far as this worker knows)."""
        until = self.refused_until.get(client)
        if until is not None:
            left = until - self.clock()
            if left > 0:
                raise Throttled(left)

    def failed(self, client: str) -> None:
        """After a wrong token from ``client``: counted; from now on refused while over its
        budget. Without the database, this worker alone refuses it for one interval."""
        try:
            ahead = self.store.login_failed(client, self.interval)
        except CatalogUnavailable:
            ahead = self.allowance + self.interval
        self.failures += 1
        if ahead > self.allowance:
            self._refuse(client, ahead - self.allowance)
        if self.failures % FORGET_EVERY == 0:
            self._forget_paid()

    def _refuse(self, client: str, seconds: float) -> None:
        now = self.clock()
        if len(self.refused_until) >= MAX_REMEMBERED:
            self.refused_until = {c: t for c, t in self.refused_until.items() if t > now}
        if client not in self.refused_until or self.refused_until[client] <= now:
            self.log.warning("wrong admin tokens: client refused for a while", client=client,
                             seconds=round(seconds, 1))
        self.refused_until[client] = now + seconds

    def _forget_paid(self) -> None:
        with contextlib.suppress(CatalogUnavailable):
            self.store.forget_old()
