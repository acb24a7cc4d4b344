"""Retention's decision over 1,000,000 rows (issue 21): the time
:func:`videodrop.retention.plan.decide` takes to say what goes and why, and then to list
every video it removes with its rule (what ``--dry-run`` prints and a pass expires),
against a plain ``SELECT count(*) FROM videos`` (a sequential scan of the same table) in
the same run.

The rows are bench/catalog.py's (``fill``: created_at 20 s apart over ~231 days, 10 %
uploads, a third in ``inbox/cam1/<day>`` — one origin per day — the rest in ``inbox``,
sizes 100,000 + i bytes, 2 % failed). The rules make every step work: a global
``max_age`` of 200 days (the oldest ~13 %), a quota on ``inbox`` (which rules every inbox
folder: 232 origins merged oldest first) 5 % under their usage, a
global quota of 80 % of all bytes, ``min_age`` 1 day, uploads kept: over a third of the
rows go, a worst case (a pass that runs every few minutes removes a few). Target: the
decision ≤ 5 s; the listing of what it decided is measured beside it (no target: a pass
streams it in batches while it removes, at far more than the listing's cost per video).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package, not bench/*.py
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg

from bench import common
from bench.catalog import fill
from bench.common import Row, Scratch, row

N = 1_000_000
TARGET_SECONDS = 5.0
RUNS = 3


def rules_text(url: str) -> str:
    with psycopg.connect(url) as conn:
        inbox, total = conn.execute(
            "SELECT sum(size) FILTER (WHERE origin LIKE 'inbox%%'), sum(size) FROM videos"
        ).fetchone() or (0, 0)
    return (f'[global]\nmax_age = "200d"\nmin_age = "1d"\nquota = {int(total) * 80 // 100}\n'
            f'[origins."inbox"]\nquota = {int(inbox) * 95 // 100}\n')


def main() -> list[Row]:
    from videodrop.catalog import Catalog
    from videodrop.retention.plan import decide
    from videodrop.retention.rules import parse

    with Scratch("retention") as scratch:
        with common.stage(f"retention: {N:,} rows"):
            fill(scratch.database_url, N, {}, {})
        rules = parse(rules_text(scratch.database_url))
        catalog = Catalog.connect(scratch.database_url)
        try:
            decisions, bounds, took, scans = 0, [], [], []
            for _ in range(RUNS):
                with psycopg.connect(scratch.database_url) as conn:
                    t0 = time.perf_counter()
                    conn.execute("SELECT count(*) FROM videos").fetchone()
                    scans.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                plan = decide(catalog, rules, catalog.clock())
                bounds.append(time.perf_counter() - t0)
                listed = plan.decisions(catalog)
                took.append(time.perf_counter() - t0)
                decisions = len(listed)
                common.log(f"retention: decide {bounds[-1]:.2f} s, with the list"
                           f" {took[-1]:.2f} s ({decisions:,} to go,"
                           f" {sorted({d.rule for d in listed})}); count(*)"
                           f" {scans[-1]:.2f} s")
        finally:
            catalog.close()
    median, scan = statistics.median(took), statistics.median(scans)
    ends = statistics.median(bounds)
    return [row(f"retention decision over {N // 1_000_000}M rows: every rule's end, i.e."
                f" which {decisions:,} videos go (max_age, origin and global quota; median"
                f" of {RUNS})", f"{ends:.2f} s", f"{scan:.2f} s (SELECT count(*), same"
                " table)", ends / scan, f"<= {TARGET_SECONDS:.0f} s", ends <= TARGET_SECONDS),
            row(f"... and listing those {decisions:,} videos with their rules (what"
                " --dry-run prints; a pass streams them as it removes)", f"{median:.2f} s",
                f"{scan:.2f} s (SELECT count(*), same table)", median / scan)]


if __name__ == "__main__":
    common.standalone(main, "retention decision at a million rows")
