"""The origins page's day strip in Debian's Chromium: two real recordings of a camera with
a gap between them, drawn where their file names put them; a click on a recording opens
its video at the time clicked. The expected places come from the names the test gave."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.test_browser import browser, log_in  # noqa: F401
from tests.harness import System, wait_for

SECONDS = 60  # each clip's length


@pytest.fixture(scope="module")
def vp9_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("timeline-page") / "clip.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc=duration={SECONDS}:size=64x64:rate=2", "-c:v", "libvpx-vp9",
                    "-deadline", "realtime", "-cpu-used", "8", "-b:v", "50k", str(path)],
                   check=True, timeout=120)
    return path


def test_the_day_strip_and_its_click_through(system: System, browser: BrowserContext,  # noqa: F811
                                             vp9_clip: Path, output_dir: Path) -> None:
    (system.inbox / "cam7").mkdir()
    # 10:00:00-10:01:00 and 10:03:00-10:04:00 (UTC): a gap of 120 s
    names = ["ch01_20261130100000.webm", "ch01_20261130100300.webm"]
    for name in names:
        shutil.copy(vp9_clip, system.inbox / "cam7" / name)
    records = system.wait_done(2, timeout=120)
    assert {r["status"] for r in records} == {"ready"}
    first = next(r for r in records if r["original_filename"] == names[0])
    assert first["recording"]["start"] == "2026-11-30T10:00:00.000Z"

    page = browser.new_page()
    log_in(page, system)
    page.get_by_role("link", name="Timelines").click()
    page.get_by_role("link", name="inbox/cam7").click()
    expect(page.locator("#day h2")).to_contain_text("inbox/cam7 on 2026-11-30")
    page.goto(f"{system.base_url}/origins?origin=inbox/cam7&day=2026-11-30&hour=10")
    expect(page.locator("#day-summary")).to_have_text(re.compile(r"2 recordings,\s+1 gap\."))
    expect(page.locator("#gap-list li")).to_have_text(["gap of 120 s from 10:01:00"])
    bars = page.locator("#strip a.recording rect")
    expect(bars).to_have_count(2)
    strip = page.locator("#strip").bounding_box()
    boxes = [bars.nth(i).bounding_box() for i in range(2)]
    assert strip and all(boxes)
    # where the names put them on the hour: 0..60 s and 180..240 s of 3600
    per_second = strip["width"] / 3600
    for box, start in zip(boxes, (0, 180), strict=True):
        assert box is not None
        assert abs(box["x"] - strip["x"] - start * per_second) <= 1.5
        assert abs(box["width"] - SECONDS * per_second) <= 1.5
    page.screenshot(path=str(output_dir / "timeline-day-strip.png"), full_page=True)

    box = boxes[0]
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page).to_have_url(re.compile(rf"/videos/{first['id']}\?t=[0-9.]+$"))
    t = float(page.url.rsplit("t=", 1)[1])
    assert abs(t - SECONDS / 2) <= 1.5 / per_second  # the middle, to a pixel and a half
    player = page.locator("video#player")
    wait_for(lambda: player.evaluate("v => v.readyState >= 1"), timeout=30,
             what="the player's metadata")
    wait_for(lambda: abs(player.evaluate("v => v.currentTime") - t) < 0.01, timeout=10,
             what=f"the player at {t} s")


STILL, MOVING = 20, 10  # a camera's clip: still, then MOVING s of motion, then still


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SECONDS of a fixed camera: a grey picture, a white square crossing it (over and
    over) from STILL s to STILL + MOVING s."""
    path = tmp_path_factory.mktemp("timeline-activity") / "camera.webm"
    subprocess.run(["ffmpeg", "-v", "error",
                    "-f", "lavfi", "-i", f"color=c=gray:size=64x64:rate=5:duration={SECONDS}",
                    "-f", "lavfi", "-i", "color=c=white:size=16x16:rate=5",
                    "-filter_complex", f"[0][1]overlay=x='mod((t-{STILL})*40,80)-16':y=24"
                    f":shortest=1:enable='between(t,{STILL},{STILL + MOVING - 0.1})'",
                    "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                    "-b:v", "100k", str(path)],
                   check=True, timeout=120)
    return path


def test_activity_on_the_day_strip_opens_the_video_there(
        make_system: Any, browser: BrowserContext, camera_clip: Path,  # noqa: F811
        output_dir: Path) -> None:
    """The derive role's scenes activity of a recording is drawn on the strip where the
    picture moved (the API that feeds it says the same), and a click on it opens the video
    at that time."""
    system: System = make_system(VIDEODROP_DERIVE="scenes").start()
    system.start_role("derive")
    (system.inbox / "cam8").mkdir()
    shutil.copy(camera_clip, system.inbox / "cam8" / "ch01_20261130100000.webm")

    def scenes_ready() -> dict[str, Any] | None:
        videos = system.videos()
        ready = [v for v in videos
                 if v.get("derivatives", {}).get("scenes", {}).get("status") == "ready"]
        return ready[0] if ready else None

    video = wait_for(scenes_ready, timeout=180, interval=0.5, what="the scenes")
    body = system.http.get(f"{system.base_url}/api/origins/inbox/cam8/timeline",
                           params={"from": "2026-11-30T09:00:00Z", "to": "2026-11-30T11:00:00Z"},
                           headers=system.admin, timeout=10).json()
    [recording] = body["recordings"]
    [moved] = recording["activity"]
    # the motion's seconds, to a second either side (the cut's frame is no motion)
    assert abs(moved["offset"] - STILL) <= 1 and abs(moved["seconds"] - MOVING) <= 2, moved
    assert moved["start"].startswith("2026-11-30T10:00:")

    page = browser.new_page()
    log_in(page, system)
    page.goto(f"{system.base_url}/origins?origin=inbox/cam8&day=2026-11-30&hour=10")
    expect(page.locator("#day-summary")).to_contain_text("1 stretch of activity")
    marks = page.locator("#strip a.activity rect")
    expect(marks).to_have_count(1)
    strip = page.locator("#strip").bounding_box()
    box = marks.first.bounding_box()
    assert strip and box
    per_second = strip["width"] / 3600
    # drawn where the recording moved (at least two pixels wide however short)
    assert abs(box["x"] + box["width"] / 2 - strip["x"]
               - (moved["offset"] + moved["seconds"] / 2) * per_second) <= 2
    listed = page.locator("#activity-list li a")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(f"activity from 10:00:{int(moved['offset']):02d}")
    page.screenshot(path=str(output_dir / "timeline-activity.png"), full_page=True)

    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page).to_have_url(re.compile(rf"/videos/{video['id']}\?t=[0-9.]+$"))
    t = float(page.url.rsplit("t=", 1)[1])
    pixel = 1 / per_second  # a pixel's seconds
    assert moved["offset"] - pixel <= t <= moved["offset"] + moved["seconds"] + pixel
    player = page.locator("video#player")
    wait_for(lambda: player.evaluate("v => v.readyState >= 1"), timeout=30,
             what="the player's metadata")
    wait_for(lambda: abs(player.evaluate("v => v.currentTime") - t) < 0.01, timeout=10,
             what=f"the player at {t} s")
