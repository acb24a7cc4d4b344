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

Each step's end is found in PostgreSQL (a running total over the rows in oldest-first
order, read until it reaches the bytes needed), so a plan is a few boundaries however many
videos it removes; :meth:`Plan.chosen` lists the videos from them in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from videodrop.catalog import Bounds, Catalog, Usage
from videodrop.catalog.retention import START, Key
from videodrop.retention.rules import Rules

LAST_ID = (1 << 63) - 1


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
    """What a pass removes: the origins' own ends (``bounds``) and the global ones, the
    usage it started from, the store's space then, the sentence of each rule (by origin,
    ``""`` for the global rules) and sentences for rules it cannot meet."""

    usage: list[Usage] = field(default_factory=list)
    store: Store | None = None
    bounds: Bounds = field(default_factory=Bounds)
    global_quota_end: Key = START
    global_end: Key = START
    details: dict[tuple[str, str], str] = field(default_factory=dict)
    shortfalls: list[str] = field(default_factory=list)

    def chosen(self, catalog: Catalog) -> Iterator[Decision]:
        """The videos to remove, oldest first, each with its rule and sentence (read in
        batches from the live table: one held since the plan was made is left out)."""
        for c in catalog.chosen(self.bounds, global_quota_end=self.global_quota_end,
                                global_end=max(self.global_end, self.global_quota_end)):
            detail = self.details.get((c.origin, c.rule)) or self.details.get(("", c.rule), "")
            yield Decision(c.id, c.origin, c.size, c.created_at, c.rule, detail)

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
    for use in plan.usage:
        _per_origin(catalog, plan, rules, use, now)
    taken = sum(t[3] for t in catalog.origin_totals(plan.bounds))
    over = (sum(u.bytes for u in plan.usage) - taken - rules.quota
            if rules.quota is not None else 0)
    floor = rules.keep_free(store.total) if store is not None else None
    if store is None and rules.keep_free(1 << 60) is not None:
        plan.shortfalls.append("keep_free not checked: the media root's space is unknown")
    short = floor - (store.free + taken) if store is not None and floor else 0
    if over > 0:
        plan.details["", "global_quota"] = (f"all videos were {_gib(over)} over the global"
                                            f" quota {_gib(rules.quota or 0)}")
        end, missing = catalog.global_end(plan.bounds, over)
        plan.global_quota_end = end or START
        if missing:
            plan.shortfalls.append(f"all videos stay {_gib(missing)} over the global quota:"
                                   " the rest is held, kept or younger than min_age")
    if short > max(over, 0):
        plan.details["", "free_space"] = (f"the store had {_gib(short)} less free than"
                                          f" keep_free ({_gib(floor or 0)})")
        end, missing = catalog.global_end(plan.bounds, short)
        plan.global_end = end or START
        if missing:
            plan.shortfalls.append(f"the store stays {_gib(missing)} under keep_free: the"
                                   " rest is held, kept or younger than min_age")
    return plan


def _per_origin(catalog: Catalog, plan: Plan, rules: Rules, use: Usage, now: datetime
                ) -> None:
    """Step 1 for one origin: its ends in ``plan.bounds`` (nothing for a kept origin)."""
    rule = rules.for_origin(use.origin)
    if rule.keep:
        return
    before = now - rule.min_age
    cutoff = now - rule.max_age if rule.max_age is not None else START[0]
    if rule.max_age is not None:
        plan.details[use.origin, "max_age"] = (f"older than max_age {_age(rule.max_age)}"
                                               f" of {use.origin}")
    quota_end = START
    if rule.quota is not None and use.bytes > rule.quota:
        over = use.bytes - rule.quota
        plan.details[use.origin, "origin_quota"] = (f"{use.origin} was {_gib(over)} over its"
                                                    f" quota {_gib(rule.quota)}")
        end, missing = catalog.quota_end(use.origin, before, over)
        quota_end = end or (before, LAST_ID)  # short: every row it may remove goes
        if missing:
            plan.shortfalls.append(f"{use.origin} stays {_gib(missing)} over its quota: the"
                                   " rest is held or younger than min_age")
    plan.bounds.add(use.origin, before, cutoff, quota_end)


def describe(d: Decision) -> str:
    """A decision's line of ``videodrop retention --dry-run`` (tab-separated: id, origin,
    created_at, bytes, rule, why)."""
    return f"{d.video_id}\t{d.origin}\t{d.created_at.isoformat()}\t{d.size}\t{d.rule}\t{d.detail}"
