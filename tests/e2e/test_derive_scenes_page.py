"""The scenes on the video page, in Debian's Chromium: a clip with known cuts shows one
thumbnail per scene and the activity strip; a click on a scene seeks the player to its
start. The screenshot goes to test-output/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from testbed import cuts
from tests.e2e.test_browser import browser, log_in  # noqa: F401
from tests.harness import System, wait_for


def scenes_ready(system: System) -> dict[str, Any] | None:
    for item in system.videos():
        if item.get("derivatives", {}).get("scenes", {}).get("status") == "ready":
            return item
    return None


def test_scenes_and_activity_on_the_video_page(system: System, browser: BrowserContext,  # noqa: F811
                                               output_dir: Path, tmp_path: Path) -> None:
    clip = cuts.CORPUS[0]  # 480p25, six hard cuts
    made = cuts.make(clip, tmp_path)
    webm = tmp_path / "cuts.webm"  # VP9: every Chromium build plays it
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(made), "-c:v", "libvpx-vp9",
                    "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M", str(webm)],
                   check=True, timeout=300)
    system.start_role("derive")
    shutil.copy(webm, system.inbox / "cuts.webm")
    video = wait_for(lambda: scenes_ready(system), timeout=180, interval=0.5,
                     what="the scenes")
    starts = [t.first / clip.rate for t in clip.transitions()]

    page = browser.new_page()
    log_in(page, system)
    page.goto(f"{system.base_url}/videos/{video['id']}")
    items = page.locator("#scene-list li button")
    expect(items).to_have_count(len(starts) + 1)
    expect(page.locator("#scenes-summary")).to_contain_text(f"{len(starts) + 1} scenes")
    thumb = items.nth(3).locator(".scene-thumb")
    assert thumb.evaluate("d => getComputedStyle(d).backgroundImage").startswith('url("')
    wait_for(lambda: thumb.evaluate("d => d.offsetWidth === 160 && d.offsetHeight === 90"),
             timeout=10, what="the thumbnail's box")
    # a scene under 10 s is labelled to the tenth, so its two ends differ
    label = items.nth(3).locator(".scene-label").inner_text()
    found = re.fullmatch(r"4 · (\d+:\d\d\.\d)\u2013(\d+:\d\d\.\d)( · \d+ frames?)?", label)
    assert found and found[1] != found[2], label
    assert float(found[1].split(":")[1]) == pytest.approx(starts[2], abs=0.1)
    strip = page.locator("#activity-strip")
    assert strip.evaluate("c => c.width") > 0
    player = page.locator("video#player")
    wait_for(lambda: player.evaluate("v => v.readyState >= 1"), timeout=30,
             what="the player's metadata")
    # one timeline: the seek bar under the player stands for the native one, whose part
    # (not reachable by getComputedStyle) a rule of the page's hides on this player
    assert player.evaluate("""v => [...document.styleSheets].flatMap(s => [...s.cssRules])
        .some(r => r.selectorText && r.style.display === 'none'
              && r.selectorText.endsWith('::-webkit-media-controls-timeline')
              && v.matches(r.selectorText.replace('::-webkit-media-controls-timeline', '')))""")
    items.nth(3).click()
    wait_for(lambda: abs(player.evaluate("v => v.currentTime") - starts[2]) < 0.05,
             timeout=10, what="the player to seek to the fourth scene")
    wait_for(lambda: page.evaluate("() => [...document.styleSheets].every("
                                   "s => s.cssRules.length > 0)"),
             timeout=30, what="the stylesheets")
    page.screenshot(path=str(output_dir / "derive-scenes.png"), full_page=True)
