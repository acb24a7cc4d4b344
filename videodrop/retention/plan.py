"""The decision: which videos a pass removes, and by which rule (:func:`decide`).

In this order, each step counting what the steps before it chose:

1. per table of the rules file (the origins it rules: its folder and those under it),
   oldest first: what is older than its ``max_age`` (rule ``max_age``), then, while they
   are over its ``quota``, the next oldest (rule ``origin_quota``);
2. across origins, oldest first: while all videos together are over the global ``quota``
   (rule ``global_quota``), then while the store has less free than ``keep_free`` (rule
   ``free_space``), the next oldest.

Never chosen: a held video, one younger than its origin's ``min_age``, one of an origin
that is kept (``keep = true``, uploads without an ``[uploads]`` table), one not ready or
failed. Usage counts every row that is not expired (held, young and in-flight ones too),
in bytes of its original and its derivatives (``size + derivative_bytes``: posters,
packet indexes, renditions); a quota is met when usage ≤ quota. When what may go is not enough,
the plan says so (:attr:`Plan.shortfalls`) and the rest stays.

A plan is a few boundaries per origin, however many videos it removes: a table's quota
end is found in PostgreSQL (a running total over its rows, oldest first, read until it
reaches the bytes needed); the global ends by merging the origins' rows oldest first (one
index range each) until the bytes are freed; :meth:`Plan.chosen` lists the videos from
the boundaries, in batches.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from videodrop.catalog import Catalog, Usage
from videodrop.catalog.retention import NEVER, START, Key
from videodrop.retention.rules import RULES, Rules


class Decision(NamedTuple):
    """One video to remove: its id, origin, size in bytes, created_at, the rule
    (``videodrop.retention.rules.RULES``) and the sentence saying why (a tuple: many
    thousands are made per pass)."""

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


@dataclass(frozen=True)
class OriginPlan:
    """One removable origin: rows created before ``before`` may go (min_age); rows
    created before ``cutoff`` go (max_age; :data:`NEVER`: none); rows up to
    ``quota_end`` in oldest-first order go (its table's quota, over every origin the table
    rules; ``START``: none)."""

    origin: str
    before: datetime
    cutoff: datetime = NEVER
    quota_end: Key = START
    table: str = ""  # the table that rules it (the origin itself when none does)

    @property
    def own_end(self) -> Key:
        """The last row its own rules take (``(cutoff, 0)`` stands before every row
        created at the cutoff)."""
        return max((self.cutoff, 0), self.quota_end)


@dataclass
class Plan:
    """What a pass removes: each removable origin's own ends and the global ones, the
    usage it started from, the store's space then, the sentence of each rule (by origin,
    ``""`` for the global rules) and sentences for rules it cannot meet."""

    usage: list[Usage] = field(default_factory=list)
    store: Store | None = None
    origins: list[OriginPlan] = field(default_factory=list)
    global_quota_end: Key = START
    global_end: Key = START
    details: dict[tuple[str, str], str] = field(default_factory=dict)
    shortfalls: list[str] = field(default_factory=list)

    def chosen(self, catalog: Catalog) -> Iterator[Decision]:
        """The videos to remove, oldest first, each with its rule and sentence: each
        origin's rows up to its end, merged (read in batches from the live table: a row
        held since the plan was made is left out)."""
        last = max(self.global_end, self.global_quota_end)
        streams = [self._decisions(catalog, o, max(o.own_end, last)) for o in self.origins
                   if max(o.own_end, last) > START]
        yield from heapq.merge(*streams, key=lambda d: (d.created_at, d.video_id))

    def _decisions(self, catalog: Catalog, o: OriginPlan, upto: Key) -> Iterator[Decision]:
        details = {rule: self.details.get((o.table, rule)) or self.details.get(("", rule), "")
                   for rule in RULES}
        cutoff, quota_end, global_quota_end = o.cutoff, o.quota_end, self.global_quota_end
        for c in catalog.removable(o.origin, o.before, upto=upto):
            key = (c.created_at, c.id)
            rule = ("max_age" if c.created_at < cutoff else
                    "origin_quota" if key <= quota_end else
                    "global_quota" if key <= global_quota_end else "free_space")
            yield Decision(c.id, c.origin, c.size, c.created_at, rule, details[rule])

    def decisions(self, catalog: Catalog) -> list[Decision]:
        return list(self.chosen(catalog))


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
    groups: dict[str, list[Usage]] = {}
    for use in plan.usage:
        groups.setdefault(rules.governing(use.origin), []).append(use)
    taken = 0
    for name, uses in groups.items():
        for o in _per_table(catalog, plan, rules, name, uses=uses, now=now):
            plan.origins.append(o)
            if o.own_end > START:
                taken += catalog.removable_bytes(o.origin, o.before, o.own_end)
    over = (sum(u.bytes for u in plan.usage) - taken - rules.quota
            if rules.quota is not None else 0)
    floor = rules.keep_free(store.total) if store is not None else None
    if store is None and rules.keep_free(1 << 60) is not None:
        plan.shortfalls.append("keep_free not checked: the media root's space is unknown")
    short = floor - (store.free + taken) if store is not None and floor else 0
    if over > 0:
        plan.details["", "global_quota"] = (f"all videos were {_gib(over)} over the global"
                                            f" quota {_gib(rules.quota or 0)}")
    if short > max(over, 0):
        plan.details["", "free_space"] = (f"the store had {_gib(short)} less free than"
                                          f" keep_free ({_gib(floor or 0)})")
    if over > 0 or short > 0:
        _global(catalog, plan, over, short)
    return plan


def _global(catalog: Catalog, plan: Plan, over: int, short: int) -> None:
    """Step 2: what the origins' own rules leave, oldest first across origins, until
    ``over`` (the global quota) and then ``short`` (keep_free) bytes are freed."""
    left = [(o.origin, o.before, o.own_end) for o in plan.origins]
    if over > 0:
        end, missing = catalog.global_end(left, over)
        plan.global_quota_end = end or START
        if missing:
            plan.shortfalls.append(f"all videos stay {_gib(missing)} over the global quota:"
                                   " the rest is held, kept or younger than min_age")
    if short > max(over, 0):
        end, missing = catalog.global_end(left, short)
        plan.global_end = end or START
        if missing:
            plan.shortfalls.append(f"the store stays {_gib(missing)} under keep_free: the"
                                   " rest is held, kept or younger than min_age")


def _per_table(catalog: Catalog, plan: Plan, rules: Rules, name: str, *, uses: list[Usage],
               now: datetime) -> list[OriginPlan]:
    """Step 1 for the origins one table rules (``name``: the table, or the one origin
    that has none): their ends (none for a kept table)."""
    rule = rules.for_origin(uses[0].origin)
    if rule.keep:
        return []
    before = now - rule.min_age
    cutoff = NEVER
    if rule.max_age is not None:
        cutoff = now - rule.max_age
        plan.details[name, "max_age"] = f"older than max_age {_age(rule.max_age)} of {name}"
    quota_end = START
    used = sum(u.bytes for u in uses)
    if rule.quota is not None and used > rule.quota:
        over = used - rule.quota
        plan.details[name, "origin_quota"] = (f"{name} was {_gib(over)} over its quota"
                                              f" {_gib(rule.quota)}")
        end = catalog.quota_end([u.origin for u in uses], before, over)
        if end is None:  # short: every row it may remove goes
            end = (before, 0)
            missing = over - sum(catalog.removable_bytes(u.origin, before) for u in uses)
            plan.shortfalls.append(f"{name} stays {_gib(missing)} over its quota: the rest"
                                   " is held or younger than min_age")
        quota_end = end
    return [OriginPlan(u.origin, before, cutoff, quota_end, name) for u in uses]


def describe(d: Decision) -> str:
    """A decision's line of ``videodrop retention --dry-run`` (tab-separated: id, origin,
    created_at, bytes, rule, why)."""
    return (f"{d.video_id}\t{d.origin}\t{d.created_at.isoformat()}\t{d.size}\t{d.rule}\t"
            f"{d.detail}")
