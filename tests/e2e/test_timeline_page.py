"""The origins page's day strip in Debian's Chromium: two real recordings of a camera with
a gap between them, drawn where their file names put them; a click on a recording opens
its video at the time clicked. The expected places come from the names the test gave."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

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
