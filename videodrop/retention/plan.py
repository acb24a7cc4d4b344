"""The decision: which videos a pass removes, and by which rule (:func:`decide`).

In this order, each step counting what the steps before it chose:

1. per origin, oldest first: what is older than the origin's ``max_age`` (rule
   ``max_age``), then, while the origin is over its ``quota``, the next oldest (rule
   ``origin_quota``);
2. across origins, oldest first: while all videos together are over the global ``quota``
   (rule ``global_quota``), then while the store has less free than ``keep_free`` (rule
   ``free_space``), the next oldest.

Never chosen: a held video, one younger than its origin's ``min_age``, one of an origin
that is kept (``keep = true``, uploads without an ``[uploads]`` table), one not ready or
failed. Usage counts every row that is not expired (held, young and in-flight ones too),
in bytes of ``size``; a quota is met when usage ≤ quota. When what may go is not enough,
the plan says so (:attr:`Plan.shortfalls`) and the rest stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from videodrop.catalog import Candidate, Catalog, Usage
from videodrop.retention.rules import OriginRule, Rules

_Choose = Callable[[Candidate, str, str], None]


@dataclass(frozen=True)
class Decision:
    """One video to remove: its id, origin, size in bytes, created_at, the rule
    (``videodrop.retention.rules.RULES``) and the sentence saying why."""

    video_id: int
    origin: str
    size: int
    created_at: datetime
    rule: str
    detail: str


@dataclass(frozen=True)
class Store:
    """The store's space in bytes (``os.statvfs`` of the media root): free to us, total."""

    free: int
    total: int


@dataclass
class Plan:
    """What a pass removes (oldest first within each step), the usage it started from, the
    store's space then, and sentences for rules it cannot meet."""

    decisions: list[Decision] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    store: Store | None = None
    shortfalls: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(d.size for d in self.decisions)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB" if abs(n) >= 1 << 30 else f"{n} bytes"


def _age(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def decide(catalog: Catalog, rules: Rules, now: datetime, store: Store | None = None) -> Plan:
    """The plan for ``now`` (see the module docstring). Reads the catalog only."""
    plan = Plan(usage=catalog.usage(), store=store)
    chosen: set[int] = set()

    def choose(c: Candidate, rule: str, detail: str) -> None:
        chosen.add(c.id)
        plan.decisions.append(Decision(c.id, c.origin, c.size, c.created_at, rule, detail))

    for use in plan.usage:
        rule = rules.for_origin(use.origin)
        if not rule.keep:
            _per_origin(catalog, use, rule, now, choose=choose, shortfalls=plan.shortfalls)

    used = sum(u.bytes for u in plan.usage) - plan.bytes
    over = used - rules.quota if rules.quota is not None else 0
    floor = rules.keep_free(store.total) if store is not None else None
    if store is None and rules.keep_free(1 << 60) is not None:
        plan.shortfalls.append("keep_free not checked: the media root's space is unknown")
    short = floor - (store.free + plan.bytes) if store is not None and floor else 0
    if over <= 0 and short <= 0:
        return plan
    removable = {u.origin: rules.for_origin(u.origin) for u in plan.usage}
    removable = {o: r for o, r in removable.items() if not r.keep}
    if removable:
        youngest_rule = min(r.min_age for r in removable.values())
        for c in catalog.walk(now - youngest_rule):
            if over <= 0 and short <= 0:
                break
            found = removable.get(c.origin)
            if c.id in chosen or found is None or c.created_at >= now - found.min_age:
                continue
            if over > 0:
                choose(c, "global_quota", f"all videos use {_gib(over)} more than the"
                                          f" global quota {_gib(rules.quota or 0)}")
            else:
                choose(c, "free_space", f"the store has {_gib(short)} less free than"
                                        f" keep_free ({_gib(floor or 0)})")
            over -= c.size
            short -= c.size
    if over > 0:
        plan.shortfalls.append(f"all videos stay {_gib(over)} over the global quota: the rest"
                               " is held, kept or younger than min_age")
    if short > 0:
        plan.shortfalls.append(f"the store stays {_gib(short)} under keep_free: the rest is"
                               " held, kept or younger than min_age")
    return plan


def _per_origin(catalog: Catalog, use: Usage, rule: OriginRule, now: datetime, *,
                choose: _Choose, shortfalls: list[str]) -> None:
    """Step 1 for one origin."""
    over = use.bytes - rule.quota if rule.quota is not None else 0
    cutoff = now - rule.max_age if rule.max_age is not None else None
    if over <= 0 and (cutoff is None or use.oldest is None or use.oldest >= cutoff):
        return
    for c in catalog.walk(now - rule.min_age, origin=use.origin):
        if cutoff is not None and c.created_at < cutoff:
            choose(c, "max_age", f"older than max_age {_age(rule.max_age or timedelta(0))}"
                                 f" of {use.origin}")
        elif over > 0:
            choose(c, "origin_quota", f"{use.origin} uses {_gib(over)} more than its quota"
                                      f" {_gib(rule.quota or 0)}")
        else:
            break
        over -= c.size
    if over > 0:
        shortfalls.append(f"{use.origin} stays {_gib(over)} over its quota: the rest is held"
                          " or younger than min_age")


def describe(decisions: Iterable[Decision]) -> list[str]:
    """One line per decision, for ``videodrop retention --dry-run``."""
    return [f"{d.video_id}\t{d.origin}\t{d.created_at.isoformat()}\t{d.size}\t{d.rule}\t"
            f"{d.detail}" for d in decisions]
