"""Timelines on the real system (inbox → RabbitMQ → prober → PostgreSQL → API): a series of
small ffmpeg-made segments per camera, each camera named in one of the built-in file name
patterns (or MOV creation_time in local time, or only its mtime), with jittered ends
(±200 ms), one injected gap and one injected overlap. Every injected gap and overlap is
found, exactly where the test put it; no jitter shows as a gap. The expectations come from
the schedule this test generated, never from the system's output.

The pipeline's case runs once per media store; the bounds of a timeline request are the
catalog's and the API's, answered before the store is asked: file store only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.harness import System

BERLIN = ZoneInfo("Europe/Berlin")
NOMINAL = 2  # seconds between the starts of back-to-back segments
#: The true durations of the six segments (10 frames a second): ±200 ms around NOMINAL.
DURATIONS = (2.0, 2.2, 2.0, 1.8, 2.0, 2.0)
OVERLAP = 1  # seconds segment 5 starts before segment 4 ends

Namer = Callable[[datetime, int], str]


def _ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Camera:
    folder: str
    gap: int  # seconds injected between segments 2 and 3
    name: Namer
    source: str  # what the record says the start came from
    mov_local: bool = False  # creation_time written as Berlin wall time


CAMERAS = [
    Camera("dahua", 1, lambda t, i: f"{t:%Y-%m-%d}/001/dav/{t:%H}/{t:%H.%M.%S}-"
           f"{t + timedelta(seconds=NOMINAL):%H.%M.%S}[M][0@0][0].mp4", "file_name"),
    Camera("reolink", 600, lambda t, i: (
        f"RecM01_{t.astimezone(BERLIN):%Y%m%d_%H%M%S}_"
        f"{(t + timedelta(seconds=NOMINAL)).astimezone(BERLIN):%H%M%S}_6E24C10_1B2F4A3.mp4"),
        "file_name"),
    Camera("channel", 60, lambda t, i: f"ch01_{t:%Y%m%d%H%M%S}.mp4", "file_name"),
    Camera("hik", 17, lambda t, i: f"192.168.1.64_01_{t:%Y%m%d%H%M%S}000.mp4", "file_name"),
    Camera("iso", 2, lambda t, i: f"front_{t.astimezone(BERLIN):%Y-%m-%d_%H-%M-%S}.mp4",
           "file_name"),
    Camera("epoch", 300, lambda t, i: f"clip_{int(t.timestamp())}.mp4", "file_name"),
    Camera("mov", 5, lambda t, i: f"mov_{i:04d}.mov", "creation_time", mov_local=True),
    Camera("plain", 45, lambda t, i: f"segment_{'abcdef'[i]}.mp4", "mtime"),
]

ORIGINS_TOML = """
[defaults]
gap_tolerance = 1.0

[origins."inbox/reolink"]
timezone = "Europe/Berlin"

[origins."inbox/iso"]
timezone = "Europe/Berlin"

[origins."inbox/mov"]
timezone = "Europe/Berlin"
creation_time = "local"
"""


def schedule(base: datetime, gap: int) -> list[tuple[datetime, datetime]]:
    """(start, true end) of the six segments: back to back at NOMINAL steps (their true
    durations jitter), the gap before segment 3, the overlap before segment 5."""
    starts = [base]
    for i in range(1, len(DURATIONS)):
        prev = starts[-1]
        if i == 3:
            starts.append(prev + timedelta(seconds=DURATIONS[2] + gap))
        elif i == 5:
            starts.append(prev + timedelta(seconds=DURATIONS[4] - OVERLAP))
        else:
            starts.append(prev + timedelta(seconds=NOMINAL))
    return [(s, s + timedelta(seconds=d)) for s, d in zip(starts, DURATIONS, strict=True)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    """One H.264 clip of each duration in DURATIONS (64x64, 10 frames a second)."""
    folder = tmp_path_factory.mktemp("segments")
    made = {}
    for seconds in sorted(set(DURATIONS)):
        path = folder / f"{seconds}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                        f"testsrc=duration={seconds}:size=64x64:rate=10", "-c:v", "libx264",
                        "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                       check=True, timeout=60)
        made[seconds] = path
    return made


def _drop(system: System, staging: Path, camera: Camera, clips: dict[float, Path],
          plan: list[tuple[datetime, datetime]]) -> list[str]:
    names = []
    for i, (start, end) in enumerate(plan):
        rel = Path(camera.folder) / camera.name(start, i)
        made = staging / rel
        made.parent.mkdir(parents=True, exist_ok=True)
        clip = clips[DURATIONS[i]]
        if camera.mov_local:  # the recorder's clock: Berlin wall time, written as if UTC
            wall = start.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M:%S")
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-c", "copy",
                            "-metadata", f"creation_time={wall}Z", "-f", "mov", str(made)],
                           check=True, timeout=60)
        else:
            shutil.copyfile(clip, made)
        os.utime(made, ns=(int(end.timestamp() * 1e9),) * 2)  # closed when it ended
        target = system.inbox / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(made, target)
        names.append(rel.name)
    return names


def test_every_gap_and_overlap_of_every_camera(make_system, tmp_path: Path,
                                               clips: dict[float, Path],
                                               store_env: dict[str, str]):
    """Once per media store (``store_env``: on s3 each file probed in the inbox's spool,
    its mtime kept by the move there, while it is put into the bucket)."""
    origins = tmp_path / "origins.toml"
    origins.write_text(ORIGINS_TOML)
    system = make_system(VIDEODROP_ORIGINS_FILE=str(origins), **store_env).start()
    dropped = datetime.now(UTC)
    # an hour ago, on a whole second: stamps in names carry whole seconds
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    staging = tmp_path / "staging"
    plans = {}
    for camera in CAMERAS:
        plans[camera.folder] = schedule(base, camera.gap)
        _drop(system, staging, camera, clips, plans[camera.folder])
    records = system.wait_done(len(CAMERAS) * len(DURATIONS), timeout=240)
    assert {r["status"] for r in records} == {"ready"}, [
        (r["original_filename"], r["processing_error"]) for r in records
        if r["status"] != "ready"]

    by_origin: dict[str, list[dict]] = {}
    for r in records:
        by_origin.setdefault(r["recording"]["timeline_origin"], []).append(r)
    for camera in CAMERAS:
        origin = f"inbox/{camera.folder}"
        plan = plans[camera.folder]
        mine = sorted(by_origin[origin], key=lambda r: r["recording"]["start"])
        assert [round(r["file_info"]["duration"], 3) for r in mine] == list(DURATIONS), origin
        assert [(r["recording"]["start"], r["recording"]["end"]) for r in mine] == [
            (_ms(s), _ms(e)) for s, e in plan], origin
        assert {r["recording"]["source"] for r in mine} == {camera.source}, origin
        assert {r["recording"]["estimated"] for r in mine} == {camera.source == "mtime"}

        resp = system.http.get(f"{system.base_url}/api/origins/{origin}/timeline",
                               params={"from": _ms(base - timedelta(minutes=1)),
                                       "to": _ms(base + timedelta(minutes=30))},
                               headers=system.admin, timeout=10)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert [(g["start"], g["end"], g["seconds"]) for g in body["gaps"]] == [
            (_ms(plan[2][1]), _ms(plan[3][0]), float(camera.gap))], origin
        assert [(o["start"], o["end"], o["seconds"]) for o in body["overlaps"]] == [
            (_ms(plan[5][0]), _ms(plan[4][1]), float(OVERLAP))], origin
        assert [r["start"] for r in body["recordings"]] == [_ms(s) for s, _ in plan]
        assert body["truncated"] is False

    # the origins' summaries: counted from the plans
    listed = system.http.get(f"{system.base_url}/api/origins", headers=system.admin,
                             timeout=10).json()["origins"]
    summary = {o["origin"]: o for o in listed}
    assert set(summary) == {f"inbox/{c.folder}" for c in CAMERAS}
    for camera in CAMERAS:
        one = summary[f"inbox/{camera.folder}"]
        plan = plans[camera.folder]
        assert (one["recordings"], one["first_start"], one["last_end"]) == (
            len(plan), _ms(plan[0][0]), _ms(max(e for _, e in plan)))
        assert one["duration"] == pytest.approx(sum(DURATIONS), abs=1e-6)
        # when a file last arrived under it: after the test dropped them, before now
        seen = datetime.fromisoformat(one["last_seen"])
        assert dropped - timedelta(seconds=1) <= seen <= datetime.now(UTC), one
        assert one["bytes"] == sum(clips[d].stat().st_size for d in DURATIONS) or \
            camera.mov_local  # remuxed MOVs differ in size from the MP4 clips

    # /metrics: the last recording's end, and one gap each in the last 24 hours
    text = system.http.get(f"{system.base_url}/metrics", timeout=10).text
    for camera in CAMERAS:
        origin = f"inbox/{camera.folder}"
        last = re.search(r'^videodrop_origin_last_recording_timestamp_seconds\{origin="'
                         + re.escape(origin) + r'"\} (\S+)$', text, re.M)
        gaps = re.search(r'^videodrop_origin_gaps_24h\{origin="' + re.escape(origin)
                         + r'"\} (\S+)$', text, re.M)
        assert last and gaps, origin
        assert float(last.group(1)) == pytest.approx(
            max(e for _, e in plans[camera.folder]).timestamp(), abs=1e-3)
        assert float(gaps.group(1)) == 1.0, origin


def test_timeline_requests_are_bounded_and_admin_only(system: System):
    url = f"{system.base_url}/api/origins/inbox/cam1/timeline"
    assert system.http.get(url, timeout=10).status_code == 401
    assert system.http.get(f"{system.base_url}/api/origins", timeout=10).status_code == 401
    cases = [({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "31 days"),
             ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "before"),
             ({"from": "yesterday"}, "RFC 3339"),
             ({"limit": "0"}, "limit"),
             ({"colour": "red"}, "unknown parameter")]
    for params, says in cases:
        resp = system.http.get(url, params=params, headers=system.admin, timeout=10)
        assert resp.status_code == 400 and says in resp.json()["description"], resp.text
    # an origin given with %2F is the same origin; an empty one has nothing
    resp = system.http.get(f"{system.base_url}/api/origins/inbox%2Fcam1/timeline",
                           headers=system.admin, timeout=10)
    assert resp.status_code == 200 and resp.json()["origin"] == "inbox/cam1"
    assert resp.json()["recordings"] == [] and resp.json()["gaps"] == []
    resp = system.http.post(url, headers=system.admin, timeout=10)
    assert resp.status_code == 405
