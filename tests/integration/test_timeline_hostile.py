"""Timelines against what a camera operator or a hostile file can send: a recorder clock
that cannot be believed (a MOV header saying the year 9999, or 1970), windows and days at
the ends of the calendar, an origin with a NUL, and a day of a clock change in the origin's
zone (25 hours drawn, not 24). Real inbox → RabbitMQ → prober → PostgreSQL → API; the
expectations come from the names and dates the test gave.

A recorder's clock read from its file runs once per media store (``store_env``); the rest
is the catalog's and the API's (windows, days, pages), the same on both: file store
only."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.harness import System


def far_creation_time(src: bytes, when: datetime) -> bytes:
    """``src`` (a MOV with its ``moov`` after its ``mdat`` and a version-0 ``mvhd``) with a
    version-1 ``mvhd`` (64-bit times) saying it was created at ``when``: what ffmpeg's
    muxers never write and a hostile or broken recorder may."""
    i = src.index(b"mvhd") - 4
    size = struct.unpack(">I", src[i:i + 4])[0]
    body = src[i + 8:i + size]
    assert body[0] == 0
    scale, duration = struct.unpack(">II", body[12:20])
    secs = int((when - datetime(1904, 1, 1, tzinfo=UTC)).total_seconds())
    new = b"\x01" + body[1:4] + struct.pack(">QQIQ", secs, secs, scale, duration) + body[20:]
    box = struct.pack(">I", len(new) + 8) + b"mvhd" + new
    m = src.index(b"moov") - 4
    assert m > src.index(b"mdat"), "the chunk offsets would move"
    moov = struct.unpack(">I", src[m:m + 4])[0]
    return src[:m] + struct.pack(">I", moov + len(box) - size) + src[m + 4:i] + box \
        + src[i + size:]


@pytest.fixture(scope="module")
def mov(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile-timeline") / "clip.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=2:size=64x64:rate=10", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", "-f", "mov", str(path)],
                   check=True, timeout=60)
    return path


def _probed(system: System, mov: Path, made: dict[str, bytes | None]) -> dict[str, dict]:
    """Drop each ``name: content`` (None: the clip as made) under the inbox; the records."""
    for name, content in made.items():
        target = system.inbox / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            shutil.copyfile(mov, target)
        else:
            target.write_bytes(content)
    records = system.wait_done(len(made), timeout=120)
    return {r["original_filename"]: r for r in records}


def test_a_recorder_clock_beyond_belief_falls_back_to_the_name(make_system, mov: Path,
                                                              tmp_path: Path,
                                                              store_env: dict[str, str]):
    """Once per media store (``store_env``: on s3 the header read in the inbox's spool)."""
    far = far_creation_time(mov.read_bytes(), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    unset = tmp_path / "unset.mov"  # a camera whose clock was never set
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(mov), "-c", "copy", "-metadata",
                    "creation_time=1970-01-01T00:00:05Z", "-f", "mov", str(unset)],
                   check=True, timeout=60)
    crafted = tmp_path / "far.mov"
    crafted.write_bytes(far)
    said = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                           "format_tags=creation_time", "-of", "default=nw=1:nk=1",
                           str(crafted)], capture_output=True, text=True, timeout=30, check=True)
    assert said.stdout.startswith("9999-12-31T23:59:59"), said  # what the prober reads
    system = make_system(**store_env).start()
    records = _probed(system, mov, {"cam1/ch01_20261130100000.mov": far,
                                    "cam1/ch01_20261130100002.mov": unset.read_bytes()})
    far_record = records["ch01_20261130100000.mov"]
    assert far_record["status"] == "ready", far_record["processing_error"]
    assert (far_record["recording"]["start"], far_record["recording"]["source"]) == (
        "2026-11-30T10:00:00.000Z", "file_name")
    unset_record = records["ch01_20261130100002.mov"]
    assert unset_record["status"] == "ready", unset_record["processing_error"]
    assert (unset_record["recording"]["start"], unset_record["recording"]["source"]) == (
        "2026-11-30T10:00:02.000Z", "file_name")
    assert "handler crashed" not in system.log_text("prober")


def _page(system: System) -> requests.Session:
    session = requests.Session()
    resp = session.post(f"{system.base_url}/login", timeout=10, allow_redirects=False,
                        data={"token": system.admin_token, "next": "/"})
    assert resp.status_code == 303, resp.text
    return session


def test_the_calendar_ends_and_a_nul_are_refused_not_500(system: System):
    timeline = f"{system.base_url}/api/origins/inbox/cam1/timeline"
    resp = system.http.get(timeline, params={"to": "0001-01-01T00:00:00Z"},
                           headers=system.admin, timeout=10)
    assert resp.status_code == 400, resp.text  # no day before it to default from to
    resp = system.http.get(timeline, params={"to": "0001-01-01T12:00:00Z"},
                           headers=system.admin, timeout=10)
    assert resp.status_code == 200 and resp.json()["from"] == "0001-01-01T00:00:00.000Z"
    resp = system.http.get(f"{system.base_url}/api/origins/inbox%00cam/timeline",
                           headers=system.admin, timeout=10)
    assert resp.status_code == 400 and "origin" in resp.json()["title"], resp.text
    page = _page(system)
    for query in ("origin=inbox/cam1&day=9999-12-31", "origin=inbox/cam1&day=0001-01-01",
                  "origin=inbox%00cam1"):
        resp = page.get(f"{system.base_url}/origins?{query}", timeout=10)
        assert resp.status_code == 400, (query, resp.status_code, resp.text[:200])
    assert page.get(f"{system.base_url}/origins?origin=inbox/cam1&day=9999-12-29",
                    timeout=10).status_code == 200


ORIGINS = '[origins."inbox/berlin"]\ntimezone = "Europe/Berlin"\n'


def test_a_day_of_a_clock_change_is_drawn_whole(make_system, mov: Path, tmp_path: Path):
    origins = tmp_path / "origins.toml"
    origins.write_text(ORIGINS)
    system = make_system(VIDEODROP_ORIGINS_FILE=str(origins)).start()
    # Berlin wall times: 25 October 2026 has 25 hours (the clock goes back at 03:00),
    # 29 March 2026 has 23 (forward at 02:00)
    _probed(system, mov, {"berlin/ch01_20261025233000.mov": None,
                          "berlin/ch01_20260329233000.mov": None})
    page = _page(system)
    for day, length, x, marks in (
            ("2026-10-25", 25 * 3600, 24.5 * 3600,
             ["00:00", "02:07", "05:15", "08:22", "11:30", "14:37", "17:45", "20:52", "24:00"]),
            ("2026-03-29", 23 * 3600, 22.5 * 3600,
             ["00:00", "03:52", "06:45", "09:37", "12:30", "15:22", "18:15", "21:07", "24:00"]),
            ("2026-11-30", 24 * 3600, None,
             ["00:00", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "24:00"])):
        resp = page.get(f"{system.base_url}/origins", timeout=10,
                        params={"origin": "inbox/berlin", "day": day})
        assert resp.status_code == 200, resp.text
        html = resp.text
        assert re.search(r'viewBox="0 0 ' + str(length) + r'(\.0)? 10"', html), day
        # the hour marks under the strip: the wall time where each stands
        hours = re.search(r'<div class="strip-hours"[^>]*>(.*?)</div>', html, re.S)
        assert hours and re.findall(r"<span>([0-9:]+)</span>", hours.group(1)) == marks, day
        if x is None:
            continue
        assert re.search(r'id="day-summary">1 recording,', html), day
        drawn = re.findall(r'class="recording"\s+data-x="([0-9.]+)"', html)
        assert [float(v) for v in drawn] == [x], day


def test_the_hour_a_clock_goes_back_leaves_no_phantom_gap(make_system, mov: Path,
                                                         tmp_path: Path):
    """Berlin, 25 October 2026: 02:00-03:00 runs twice (CEST, then CET). A camera naming
    its segments by wall time writes 02:59:58 then 02:00:00 and 02:00:02: the second pass
    is told from the first by when each file was closed (its mtime), so the timeline runs
    on without the hour-long hole (and hour of overlaps) reading both as CEST would make."""
    origins = tmp_path / "origins.toml"
    origins.write_text(ORIGINS)
    system = make_system(VIDEODROP_ORIGINS_FILE=str(origins)).start()
    true_starts = {"ch01_20261025025958.mov": datetime(2026, 10, 25, 0, 59, 58, tzinfo=UTC),
                   "ch01_20261025020000.mov": datetime(2026, 10, 25, 1, 0, 0, tzinfo=UTC),
                   "ch01_20261025020002.mov": datetime(2026, 10, 25, 1, 0, 2, tzinfo=UTC)}
    staging = tmp_path / "staging"
    staging.mkdir()
    (system.inbox / "berlin").mkdir()
    for name, start in true_starts.items():
        made = staging / name
        shutil.copyfile(mov, made)
        closed = start.timestamp() + 2  # the clip lasts 2 s; the recorder closed it then
        os.utime(made, (closed, closed))
        os.rename(made, system.inbox / "berlin" / name)
    records = {r["original_filename"]: r for r in system.wait_done(3, timeout=120)}
    assert {n: r["recording"]["start"] for n, r in records.items()} == {
        n: s.strftime("%Y-%m-%dT%H:%M:%S.000Z") for n, s in true_starts.items()}
    body = system.http.get(f"{system.base_url}/api/origins/inbox/berlin/timeline",
                           params={"from": "2026-10-24T23:00:00Z", "to": "2026-10-25T03:00:00Z"},
                           headers=system.admin, timeout=10).json()
    assert (body["gaps"], body["overlaps"]) == ([], []), body


def test_paging_through_recordings_that_start_together_ends(make_system, mov: Path):
    """An NVR exporting a channel's main and sub stream (or two channels) into one folder
    gives recordings that start on the same second. Following ``next_from`` with any
    ``limit`` lists each recording once and ends."""
    system = make_system().start()
    names = ["ch01_20261130100000.mov", "ch02_20261130100000.mov",
             "ch03_20261130100000.mov", "ch01_20261130100002.mov"]
    records = _probed(system, mov, {f"nvr/{n}": None for n in names})
    ids = sorted(r["id"] for r in records.values())
    url = f"{system.base_url}/api/origins/inbox/nvr/timeline"
    for limit in (1, 2, 3, 4):
        seen: list[int] = []
        params = {"from": "2026-11-30T09:00:00Z", "to": "2026-11-30T11:00:00Z",
                  "limit": str(limit)}
        for _ in range(len(names) + 2):  # bounded: a loop that never ends fails here
            body = system.http.get(url, params=params, headers=system.admin,
                                   timeout=10).json()
            seen += [r["id"] for r in body["recordings"]
                     if r["start"] >= params["from"].replace("Z", ".000Z")]
            if not body["truncated"]:
                break
            params["from"] = body["next_from"]
        else:
            pytest.fail(f"limit {limit}: next_from never ended ({seen})")
        assert sorted(seen) == ids, (limit, seen)
