"""Retention over thousands of generated rows on the real catalog and real files: the
quotas are met exactly as stated (the expected set is computed here from the generated
rows), held and too-young videos stay, a SIGKILL mid-pass leaves the invariants whole and
the next pass finishes, the advisory lock keeps a second pass out.

File store only (3,000 files; keep_free is a folder's): test_retention_s3.py runs the
same rules over objects (quotas, tombstones, a SIGKILL mid-pass, keep_free refused)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from testbed.retention_rows import GenRow, add_derivatives, generate, insert
from tests.harness import REPO, free_port, rows, wait_for
from videodrop import logs
from videodrop.metrics import RETENTION
from videodrop.retention import rules as rules_file
from videodrop.retention.enforce import EXPIRE_BATCH, LOCK_SPACE, run_pass
from videodrop.retention.plan import Store, decide

NOW = datetime.now(UTC).replace(microsecond=0)
# A camera's per-day folders are origins of their own (the record's origin is the whole
# folder) ruled by the camera's table; inbox/cam4/... have no table (the global rules).
ORIGINS = ["inbox/cam1", "inbox/cam1/2026-11-29", "inbox/cam1/2026-11-30", "inbox/cam2",
           "inbox/cam3", "inbox", "inbox/cam4/day", "upload"]
RULES = """
[global]
min_age = "1d"
quota = 2500000

[origins."inbox/cam1"]
quota = 500000

[origins."inbox/cam2"]
max_age = "5d"

[origins."inbox/cam3"]
min_age = "2d"
quota = "300KB"
"""
# The same rules, as the oracle below reads them: table -> (max_age, min_age, quota)
ORACLE = {"inbox/cam1": (None, timedelta(days=1), 500_000),
          "inbox/cam2": (timedelta(days=5), timedelta(days=1), None),
          "inbox/cam3": (None, timedelta(days=2), 300_000)}
DEFAULT = (None, timedelta(days=1), None)  # [global]; upload: no [uploads] table, kept
GLOBAL_QUOTA = 2_500_000


def table_of(origin: str) -> str:
    """The table that rules an origin: its own or its nearest parent folder's."""
    return next((t for t in ORACLE if origin == t or origin.startswith(t + "/")), origin)


def removable(r: GenRow, now: datetime) -> bool:
    rule = ORACLE.get(table_of(r.origin), DEFAULT)
    return (r.origin != "upload" and r.status in ("ready", "failed") and not r.held
            and r.created_at < now - rule[1])


def expected_gone(generated: list[GenRow], now: datetime) -> dict[int, str]:
    """What the rules say goes, worked out from the generated rows alone: id -> rule."""
    gone: dict[int, str] = {}
    oldest_first = sorted(generated, key=lambda r: (r.created_at, r.id))
    for table, (max_age, _min_age, quota) in ORACLE.items():
        mine = [r for r in oldest_first if table_of(r.origin) == table]
        candidates = [r for r in mine if removable(r, now)]
        if max_age is not None:
            gone |= {r.id: "max_age" for r in candidates if r.created_at < now - max_age}
        if quota is not None:
            used = sum(r.size for r in mine if r.id not in gone)
            for r in candidates:
                if used <= quota:
                    break
                if r.id not in gone:
                    gone[r.id] = "origin_quota"
                    used -= r.size
    used = sum(r.size for r in generated if r.id not in gone)
    for r in oldest_first:
        if used <= GLOBAL_QUOTA:
            break
        if removable(r, now) and r.id not in gone:
            gone[r.id] = "global_quota"
            used -= r.size
    return gone


@pytest.fixture
def generated(db_url: str, tmp_path: Path) -> list[GenRow]:
    return insert(db_url, generate(3000, ORIGINS, NOW, span=timedelta(days=10)),
                  tmp_path / "media")


def sample(name: str, **labels: str) -> float:
    value = RETENTION.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def deleted_counts() -> dict[tuple[str, str], float]:
    return {(what, rule): sample(f"videodrop_retention_deleted_{what}_total", rule=rule)
            for what in ("files", "bytes") for rule in rules_file.RULES}


def state(db_url: str) -> dict[int, tuple[str, str | None, bool]]:
    """id -> (status, expired_reason, files removed)."""
    return {i: (s, why, removed is not None) for i, s, why, removed in rows(
        db_url, "SELECT id, status, expired_reason, files_removed_at FROM videos")}


def assert_quotas_met_exactly(generated: list[GenRow], want: dict[int, str]) -> None:
    """Usage is at or under each quota after the pass, and the last video a quota took was
    needed: without removing it the quota would not have been met (``size``: each row's
    bytes as retention counts them)."""
    live = [r for r in generated if r.id not in want]
    for table, (_, _, quota) in ORACLE.items():
        if quota is None:
            continue
        assert sum(r.size for r in live if table_of(r.origin) == table) <= quota
        by_origin = {i for i, why in want.items() if why in ("max_age", "origin_quota")}
        used = sum(r.size for r in generated
                   if table_of(r.origin) == table and r.id not in by_origin)
        taken = [r for r in generated
                 if want.get(r.id) == "origin_quota" and table_of(r.origin) == table]
        last = max(taken, key=lambda r: (r.created_at, r.id))
        assert used <= quota < used + last.size
    used = sum(r.size for r in live)
    assert used <= GLOBAL_QUOTA
    last = max((r for r in generated if want.get(r.id) == "global_quota"),
               key=lambda r: (r.created_at, r.id))
    assert used + last.size > GLOBAL_QUOTA


def test_quotas_are_met_exactly_as_stated(db_url, catalog, generated, tmp_path):
    media = tmp_path / "media"
    want = expected_gone(generated, NOW)
    assert {"max_age", "origin_quota", "global_quota"} <= set(want.values())  # all at work
    by_table = {r.origin for r in generated if want.get(r.id) == "origin_quota"}
    assert {"inbox/cam1/2026-11-29", "inbox/cam1/2026-11-30", "inbox/cam1"} <= by_table
    before = deleted_counts()
    result = run_pass(catalog, rules_file.parse(RULES), media, logs.get("test"), now=NOW)

    after = state(db_url)
    got = {i: why for i, (status, why, _) in after.items() if status == "expired"}
    assert got == want
    assert all(removed for status, _, removed in after.values() if status == "expired")
    assert sum(result.files.values()) == len(want)
    for r in generated:  # every expired file is gone, every other one is there
        assert (media / r.stored_path).exists() == (r.id not in want), r
        if r.id in want:
            assert removable(r, NOW)

    assert_quotas_met_exactly(generated, want)

    # /metrics: what went by rule, and usage per origin after the pass.
    deleted = deleted_counts()
    for rule in ("max_age", "origin_quota", "global_quota"):
        gone = [r for r in generated if want.get(r.id) == rule]
        assert deleted[("files", rule)] - before[("files", rule)] == len(gone)
        assert deleted[("bytes", rule)] - before[("bytes", rule)] == sum(r.size for r in gone)
    live = [r for r in generated if r.id not in want]
    for origin in ORIGINS:
        mine = [r for r in live if r.origin == origin]
        assert sample("videodrop_retention_origin_bytes", origin=origin) == sum(
            r.size for r in mine)
        assert sample("videodrop_retention_origin_oldest_timestamp_seconds",
                      origin=origin) == min(r.created_at for r in mine).timestamp()
    assert sample("videodrop_retention_store_free_bytes") > 0

    # A second pass finds nothing more to do.
    again = run_pass(catalog, rules_file.parse(RULES), media, logs.get("test"), now=NOW)
    assert sum(again.files.values()) == 0


def test_held_and_young_videos_stay_under_any_pressure(db_url, catalog, generated, tmp_path):
    rules = rules_file.parse('[global]\nmin_age = "3d"\nquota = 1\nkeep_free = "99%"\n'
                             '[uploads]\nmin_age = "1d"\n')
    space = Store(free=10, total=1 << 40)  # far under the floor: everything may go
    plan = decide(catalog, rules, NOW, space)
    chosen = {d.video_id for d in plan.decisions(catalog)}
    young = {"upload": timedelta(days=1)}
    want = {r.id for r in generated
            if r.status in ("ready", "failed") and not r.held
            and r.created_at < NOW - young.get(r.origin, timedelta(days=3))}
    assert chosen == want
    assert plan.shortfalls  # the rest is held or too young: the plan says so
    run_pass(catalog, rules, tmp_path / "media", logs.get("test"), now=NOW)
    after = state(db_url)
    for r in generated:
        assert (after[r.id][0] == "expired") == (r.id in want)
        if r.held or r.status == "processing":
            assert after[r.id][0] != "expired"
            assert (tmp_path / "media" / r.stored_path).exists()


def test_keep_free_takes_the_oldest_until_the_floor(catalog, generated):
    rules = rules_file.parse('[global]\nkeep_free = "100000"\n')  # bytes
    plan = decide(catalog, rules, NOW, Store(free=40_000, total=1 << 30))
    oldest = sorted((r for r in generated if removable_anytime(r)),
                    key=lambda r: (r.created_at, r.id))
    need, want = 60_000, []
    for r in oldest:
        if need <= 0:
            break
        want.append(r.id)
        need -= r.size
    decisions = plan.decisions(catalog)
    assert [d.video_id for d in decisions] == want
    assert {d.rule for d in decisions} == {"free_space"}


def removable_anytime(r: GenRow) -> bool:
    return r.status in ("ready", "failed") and not r.held and r.origin != "upload"


def test_a_second_pass_skips_while_one_holds_the_lock(db_url, catalog, generated, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, 0)", (LOCK_SPACE,))
        result = run_pass(catalog, rules_file.parse(RULES), tmp_path / "media",
                          logs.get("test"), now=NOW)
        assert result.skipped
        assert rows(db_url, "SELECT count(*) FROM videos WHERE status = 'expired'") == [(0,)]
        conn.execute("SELECT pg_advisory_unlock(%s, 0)", (LOCK_SPACE,))
    result = run_pass(catalog, rules_file.parse(RULES), tmp_path / "media",
                      logs.get("test"), now=NOW)
    assert not result.skipped and sum(result.files.values()) == len(expected_gone(generated, NOW))


def test_a_hold_placed_after_the_decision_wins(db_url, catalog, generated, tmp_path):
    rules = rules_file.parse(RULES)
    plan = decide(catalog, rules, NOW)
    first = plan.decisions(catalog)[0].video_id
    assert catalog.hold(first) is not None
    result = run_pass(catalog, rules, tmp_path / "media", logs.get("test"), now=NOW)
    assert state(db_url)[first][0] != "expired"
    assert result.passed_over == 0  # decided afresh: the held one is not even a candidate


def _env(db_url: str, media: Path, rules: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEODROP_")}
    env.update({"VIDEODROP_DATABASE_URL": db_url, "VIDEODROP_MEDIA_ROOT": str(media),
                "VIDEODROP_RETENTION_FILE": str(rules), "VIDEODROP_LOG_FORMAT": "json"})
    return env


def check_invariants(db_url: str, media: Path, generated: list[GenRow]) -> dict[str, int]:
    """No file removed whose row says it exists; no expired row whose files are marked
    removed still has one. Counts of the row states."""
    after = state(db_url)
    counts = {"expired": 0, "unremoved": 0}
    for r in generated:
        status, _, removed = after[r.id]
        exists = (media / r.stored_path).exists()
        if status != "expired":
            assert exists, f"row {r.id} says its file exists; it is gone"
        else:
            counts["expired"] += 1
            if removed:
                assert not exists, f"row {r.id} says its files are removed; one is there"
            else:
                counts["unremoved"] += 1
    return counts


def test_sigkill_mid_pass_then_another_pass(db_url, generated, tmp_path):
    media = tmp_path / "media"
    rules = tmp_path / "rules.toml"
    rules.write_text('[global]\nquota = 1\n[uploads]\n')  # everything removable goes
    total = sum(removable_anytime(r) or (r.origin == "upload" and r.status != "processing"
                                         and not r.held) for r in generated)
    proc = subprocess.Popen([sys.executable, "-m", "videodrop", "retention"], cwd=REPO,
                            env=_env(db_url, media, rules), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def some_gone() -> Any:
            [(n,)] = rows(db_url, "SELECT count(*) FROM videos WHERE status = 'expired'")
            return n >= 50 or proc.poll() is not None
        wait_for(some_gone, timeout=60, interval=0.005, what="the pass to expire some rows")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, "the pass ended before the kill: no test"
    counts = check_invariants(db_url, media, generated)
    assert 0 < counts["expired"] < total
    before_second = counts["expired"]

    done = subprocess.run([sys.executable, "-m", "videodrop", "retention"], cwd=REPO,
                          env=_env(db_url, media, rules), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    counts = check_invariants(db_url, media, generated)
    assert counts == {"expired": total, "unremoved": 0}
    said = done.stderr.splitlines() + done.stdout.splitlines()
    summary = [line for line in said if '"retention pass"' in line]
    assert len(summary) == 1
    # one line per video this pass expired
    assert sum('"video expired"' in line for line in said) == total - before_second


def test_dry_run_prints_what_would_go_and_changes_nothing(db_url, generated, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    out = subprocess.run([sys.executable, "-m", "videodrop", "retention", "--dry-run"],
                         cwd=REPO, env=_env(db_url, tmp_path / "media", rules),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [ln.split("\t") for ln in out.stdout.splitlines()[1:] if not ln.startswith("#")]
    printed = {int(cols[0]): cols[4] for cols in lines}
    # the real clock: the rows sit minutes apart, far from any rule's boundary
    assert printed == expected_gone(generated, datetime.now(UTC))
    assert rows(db_url, "SELECT count(*) FROM videos WHERE status = 'expired'") == [(0,)]


@pytest.mark.parametrize(("text", "named"), [
    ('[global]\nmax_age = "ten days"\n', "[global] max_age"),
    ('[origins."cam1"]\nquota = "1GiB"\n', "inbox/<subfolder>"),
    ('[origins."inbox/cam1"]\nquota = "lots"\n', 'inbox/cam1"] quota'),
    ('[origins."inbox/cam1"]\nmax_age = "1d"\nmin_age = "2d"\n', "must be longer"),
    ('[global]\nkeep_free = "120%"\n', "keep_free"),
    ('[global]\nmax_agee = "1d"\n', "unknown key(s) max_agee"),
    ("[global\n", "VIDEODROP_RETENTION_FILE"),
])
def test_an_invalid_file_stops_the_role_naming_the_problem(tmp_path, db_url, text, named):
    rules = tmp_path / "rules.toml"
    rules.write_text(text)
    out = subprocess.run([sys.executable, "-m", "videodrop", "retention"], cwd=REPO,
                         env=_env(db_url, tmp_path, rules), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 78
    assert named in out.stderr and str(rules) in out.stderr


def test_a_quota_counts_each_videos_derivatives(db_url, catalog, generated, tmp_path):
    """A video occupies its original and its derivatives' files (posters, packet indexes,
    renditions record their bytes): the quotas are met exactly with both counted, the
    derivatives' files go with their video, and /metrics shows usage with them."""
    media = tmp_path / "media"
    extra = add_derivatives(db_url, generated, media, sizes=(1, 600))
    by_id = dict(rows(db_url, "SELECT id, derivative_bytes FROM videos"))
    assert by_id == {r.id: extra.get(r.id, 0) for r in generated}  # the trigger's sums
    whole = [replace(r, size=r.size + extra.get(r.id, 0)) for r in generated]
    want = expected_gone(whole, NOW)
    assert want != expected_gone(generated, NOW)  # the derivatives change what goes
    run_pass(catalog, rules_file.parse(RULES), media, logs.get("test"), now=NOW)

    got = {i: why for i, (status, why, _) in state(db_url).items() if status == "expired"}
    assert got == want
    assert_quotas_met_exactly(whole, want)
    for r in generated:
        if r.id in extra:
            poster = media / "derivatives" / r.id_key / "poster.jpg"
            assert poster.exists() == (r.id not in want), r
    live: dict[str, int] = {}
    for r in whole:
        if r.id not in want:
            live[r.origin] = live.get(r.origin, 0) + r.size
    for origin, used in live.items():
        assert sample("videodrop_retention_origin_bytes", origin=origin) == used

    # a derivative that fails on a remake takes its bytes off its video's count
    kept = next(r for r in generated if r.id in extra and r.id not in want)
    rows(db_url, "UPDATE derivatives SET status = 'failed', error = 'x', data = '{}'"
         " WHERE video_id = %s AND kind = 'poster' RETURNING video_id", kept.id)
    assert rows(db_url, "SELECT derivative_bytes FROM videos WHERE id = %s", kept.id) == [(0,)]


def test_the_role_passes_every_interval_and_serves_its_metrics(db_url, generated, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    port = free_port()
    env = {**_env(db_url, tmp_path / "media", rules),
           "VIDEODROP_METRICS_BIND": f"127.0.0.1:{port}"}
    log = tmp_path / "role.log"
    with log.open("wb") as sink:  # a file: a pipe nobody reads would stop the role
        proc = subprocess.Popen([sys.executable, "-m", "videodrop", "retention", "--every",
                                 "0.2"], cwd=REPO, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        def gauges() -> dict[str, float] | None:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            found = {line.split("{origin=")[1].split("}")[0].strip('"'): float(line.split()[-1])
                     for line in text.splitlines()
                     if line.startswith("videodrop_retention_origin_bytes{")}
            return found or None
        found = wait_for(gauges, timeout=60, what="the role's usage per origin")
        [(expired,)] = rows(db_url, "SELECT count(*) FROM videos WHERE status = 'expired'")
        assert expired > 0
        live = {origin: sum(s) for origin, s in rows(
            db_url, "SELECT origin, array_agg(size) FROM videos WHERE status <> 'expired'"
            " GROUP BY origin")}
        assert found == {o: float(v) for o, v in live.items()}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    out = log.read_text()
    assert proc.returncode == 0, out
    assert out.count('"retention pass"') >= 1


def test_drop_rows_leaves_no_tombstone(db_url, catalog, generated, tmp_path):
    want = expected_gone(generated, NOW)
    rules = rules_file.parse(RULES.replace("[global]\n", "[global]\ndrop_rows = true\n", 1))
    run_pass(catalog, rules, tmp_path / "media", logs.get("test"), now=NOW)
    left = {i for (i,) in rows(db_url, "SELECT id FROM videos")}
    assert left == {r.id for r in generated} - set(want)
    for r in generated:
        assert (tmp_path / "media" / r.stored_path).exists() == (r.id in left)


def test_a_pass_asked_to_stop_ends_after_the_batch_in_hand(db_url, catalog, generated,
                                                           tmp_path):
    """``between`` (the role: SIGTERM) is asked after each batch; a pass told to stop ends
    there, whole (rows expired, their files gone), and the next pass does the rest."""
    media = tmp_path / "media"
    want = expected_gone(generated, NOW)
    assert len(want) > 2 * EXPIRE_BATCH
    asked = []

    def between() -> bool:
        asked.append(1)
        return False

    rules = rules_file.parse(RULES)
    result = run_pass(catalog, rules, media, logs.get("test"), now=NOW, between=between)
    assert result.stopped and len(asked) == 1
    assert check_invariants(db_url, media, generated) == {"expired": EXPIRE_BATCH,
                                                           "unremoved": 0}
    result = run_pass(catalog, rules, media, logs.get("test"), now=NOW)
    assert not result.stopped
    got = {i: why for i, (status, why, _) in state(db_url).items() if status == "expired"}
    assert set(got) == set(want)
