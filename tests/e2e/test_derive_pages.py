"""Posters in the web pages, in Debian's Chromium: each ready video's poster in its library
cell (a fixed-size box, lazy-loaded) and as the player's poster. Screenshots go to
test-output/."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, expect

from tests.e2e.test_browser import OTHER, PLAYABLE, browser, log_in, row  # noqa: F401
from tests.harness import System, wait_for


def posters_ready(system: System, count: int) -> list[dict[str, Any]] | None:
    items = system.videos()
    ready = [v for v in items
             if v.get("derivatives", {}).get("poster", {}).get("status") == "ready"]
    return items if len(ready) >= count else None


def test_posters_in_the_library_and_the_player(system: System, browser: BrowserContext,  # noqa: F811
                                               samples: Path, output_dir: Path) -> None:
    system.start_role("derive")
    for name in (PLAYABLE, OTHER):
        shutil.copy(samples / name, system.inbox / name)
    items = wait_for(lambda: posters_ready(system, 2), timeout=180, interval=0.5,
                     what="both posters")
    page = browser.new_page()
    log_in(page, system)
    for name in (PLAYABLE, OTHER):
        thumb = row(page, name.rsplit(".", 1)[0].replace("_", " ")).locator("img.thumb")
        expect(thumb).to_have_count(1)
        thumb.scroll_into_view_if_needed()
        wait_for(lambda t=thumb: t.evaluate("img => img.complete && img.naturalWidth > 0"),
                 timeout=30, what=f"the poster of {name} to load")
        box = thumb.bounding_box()
        assert box is not None and (round(box["width"]), round(box["height"])) == (64, 36)
    page.screenshot(path=str(output_dir / "derive-library-posters.png"), full_page=True)

    video = next(v for v in items if v["original_filename"] == PLAYABLE)
    page.goto(f"{system.base_url}/videos/{video['id']}")
    player = page.locator("video#player")
    token = video["api_links"]["access_token"]
    expect(player).to_have_attribute("poster", f"/api/video/{token}/poster/")
    poster = page.request.get(f"{system.base_url}/api/video/{token}/poster/")
    assert poster.status == 200 and poster.headers["content-type"] == "image/jpeg"
    page.screenshot(path=str(output_dir / "derive-player-poster.png"))


def test_a_poster_refused_for_a_moment_is_asked_for_again(
        system: System, browser: BrowserContext, samples: Path) -> None:  # noqa: F811
    """A poster answered 503 (this browser's address holds its share of the API's threads)
    loads once the threads are free: the library asks for it again, later."""
    from testbed.hostile import threads_held

    system.start_role("derive")
    shutil.copy(samples / PLAYABLE, system.inbox / PLAYABLE)
    wait_for(lambda: posters_ready(system, 1), timeout=180, interval=0.5, what="the poster")
    page = browser.new_page()
    log_in(page, system)
    thumb = row(page, PLAYABLE.rsplit(".", 1)[0].replace("_", " ")).locator("img.thumb")
    wait_for(lambda: thumb.evaluate("img => img.complete && img.naturalWidth > 0"),
             timeout=30, what="the poster to load")
    per_client = 8 - 2  # api/worker.py: all of a worker's threads but KEPT_FOR_OTHERS
    with threads_held(system.base_url, system.admin_token, per_client):
        thumb.evaluate("img => { img.src = img.getAttribute('src').split('?')[0] + '?again'; }")
        wait_for(lambda: thumb.evaluate("img => img.dataset.tries === '1'"), timeout=30,
                 what="the poster's first refusal")
    wait_for(lambda: thumb.evaluate("img => img.complete && img.naturalWidth > 0"),
             timeout=30, what="the poster to load on a later try")
