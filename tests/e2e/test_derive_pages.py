"""Posters in the web pages, in Debian's Chromium: each ready video's poster in its library
cell (a fixed-size box, lazy-loaded) and as the player's poster. Screenshots go to
test-output/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, expect

from tests.e2e.test_browser import OTHER, PLAYABLE, browser, log_in, row  # noqa: F401
from tests.harness import System, wait_for
from videodrop.derivatives import KINDS


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
        assert re.search(r"/poster/\?v=[0-9]+$", thumb.get_attribute("src") or "")
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
    # the pages ask for the poster's current version: kept a year without asking again
    expect(player).to_have_attribute("poster",
                                     re.compile(rf"^/api/video/{token}/poster/\?v=[0-9]+$"))
    versioned = player.get_attribute("poster")
    poster = page.request.get(f"{system.base_url}{versioned}")
    assert poster.status == 200 and poster.headers["content-type"] == "image/jpeg"
    assert poster.headers["cache-control"] == "private, max-age=31536000, immutable"
    # the API's link, and a version that is not (or no longer) the poster's: revalidated
    for path in (f"/api/video/{token}/poster/", f"/api/video/{token}/poster/?v=1"):
        other = page.request.get(f"{system.base_url}{path}")
        assert other.status == 200 and other.body() == poster.body()
        assert other.headers["cache-control"] == "private, no-cache", path
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


def storyboard_ready(system: System, name: str) -> dict[str, Any] | None:
    found = system.records_named(name)
    ready = found and found[0].get("derivatives", {}).get("storyboard", {}).get("status")
    return found[0] if ready == "ready" else None


def pointer(page: Any, kind: str, x: float, y: float, pointer_type: str) -> None:
    """A pointer event of ``pointer_type`` (mouse, touch) at (x, y) on the seek bar."""
    page.locator("#seekbar").dispatch_event(kind, {
        "pointerType": pointer_type, "pointerId": 7, "isPrimary": True, "button": 0,
        "buttons": 0 if kind == "pointerup" else 1, "clientX": x, "clientY": y,
        "bubbles": True})


def test_storyboard_previews_on_the_seek_bar(system: System, browser: BrowserContext,  # noqa: F811
                                             samples: Path, output_dir: Path) -> None:
    """Hovering at a fraction of the seek bar shows the tile whose [start, end) holds that
    time, above the pointer; a touch drag shows it and seeks; one JSON request and at
    most one per sheet however much the pointer moves; nothing before the storyboard is
    ready (the derive role is started only after the first look)."""
    shutil.copy(samples / PLAYABLE, system.inbox / PLAYABLE)
    video = system.wait_record(PLAYABLE)
    assert video["status"] == "ready"
    page = browser.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/storyboard" in r.url else None)
    log_in(page, system)
    page.goto(f"{system.base_url}/videos/{video['id']}")
    bar = page.locator("#seekbar")
    preview = page.locator("#seekbar .seek-preview")
    expect(bar).to_be_visible()
    expect(bar).not_to_have_attribute("data-storyboard", re.compile(".*"))
    box = bar.locator(".seek-track").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(preview).to_be_hidden()
    assert asked == []

    system.start_role("derive")
    video = wait_for(lambda: storyboard_ready(system, PLAYABLE), timeout=180, interval=0.5,
                     what="the storyboard")
    board = page.request.get(video["api_links"]["storyboard_url"]).json()
    page.goto(f"{system.base_url}/videos/{video['id']}")
    player = page.locator("video#player")
    wait_for(lambda: player.evaluate("v => v.readyState >= 1"), timeout=30,
             what="the player's metadata")
    duration = player.evaluate("v => v.duration")
    box = bar.locator(".seek-track").bounding_box()
    assert box is not None
    mid_y = box["y"] + box["height"] / 2

    def x_of(tile: dict[str, Any]) -> float:  # the middle of the tile's time range
        return box["x"] + box["width"] * (tile["start"] + tile["end"]) / 2 / duration

    def shown() -> tuple[float, float, float]:
        got = preview.evaluate("""p => { const s = getComputedStyle(p.querySelector('.seek-tile'));
            return [parseFloat(s.backgroundPositionX), parseFloat(s.backgroundPositionY),
                    Number(p.dataset.start)]; }""")
        return got[0], got[1], got[2]

    tiles = board["tiles"]
    assert len(tiles) >= 5
    for tile in (tiles[len(tiles) // 2], tiles[1], tiles[-1]):
        page.mouse.move(x_of(tile), mid_y)
        expect(preview).to_be_visible()
        assert shown() == (-tile["x"], -tile["y"], tile["start"])
        tile_box = preview.locator(".seek-tile").bounding_box()
        assert tile_box is not None
        assert (round(tile_box["width"] - 4), round(tile_box["height"] - 4)) == (
            tile["w"], tile["h"])  # a 2 px border each side
        assert tile_box["y"] + tile_box["height"] <= box["y"]  # above the bar
        if tile is tiles[len(tiles) // 2]:  # centred over the pointer
            assert abs(tile_box["x"] + tile_box["width"] / 2 - x_of(tile)) <= 2
            page.screenshot(path=str(output_dir / "derive-seekbar-preview.png"))
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 200)  # off the bar
    expect(preview).to_be_hidden()

    # a finger: down on one tile, dragged to another; the preview follows and the player
    # seeks there; lifted, the preview goes
    first, second = tiles[2], tiles[-2]
    pointer(page, "pointerenter", x_of(first), mid_y, "touch")
    pointer(page, "pointerdown", x_of(first), mid_y, "touch")
    expect(preview).to_be_visible()
    assert shown()[2] == first["start"]
    pointer(page, "pointermove", x_of(second), mid_y, "touch")
    assert shown()[2] == second["start"]
    assert second["start"] <= player.evaluate("v => v.currentTime") < second["end"]
    pointer(page, "pointerup", x_of(second), mid_y, "touch")
    expect(preview).to_be_hidden()

    json_asks = [u for u in asked if u.rstrip("/").endswith("/storyboard")]
    assert len(json_asks) == 1, asked
    sheets = [u for u in asked if u.endswith(".jpg")]
    assert len(sheets) == len(set(sheets)) <= len(board["sheets"]), asked


# The share (0..1) of 25 points spread over an element's box where a user sees it: where
# the browser's hit test finds it on top (not clipped by an ancestor's overflow, not under
# another element, not off screen). Its pointer-events are turned on for the measure.
SEEN_SHARE = """el => {
  const saved = [el, el.parentElement].map(e => [e, e.style.pointerEvents]);
  saved.forEach(([e]) => { e.style.pointerEvents = 'auto'; });
  const r = el.getBoundingClientRect();
  let seen = 0;
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) {
    // 6 px in from the edges: the rounded corners are the box's, not the tile's
    const hit = document.elementFromPoint(r.left + 6 + (r.width - 12) * i / 4,
                                          r.top + 6 + (r.height - 12) * j / 4);
    if (hit && el.contains(hit)) seen++;
  }
  saved.forEach(([e, v]) => { e.style.pointerEvents = v; });
  return seen / 25;
}"""


def test_a_video_the_browser_cannot_play_shows_its_poster_and_previews(
        system: System, browser: BrowserContext, samples: Path,  # noqa: F811
        output_dir: Path) -> None:
    """FLV (VP6) does not play in a browser: the poster stands as a still where the player
    was, and the seek bar's previews show whole, over the still or, with the bar at the
    top of the screen, below it."""
    name = "grampa-laughing.flv"
    system.start_role("derive")
    shutil.copy(samples / name, system.inbox / name)

    def both_ready() -> dict[str, Any] | None:
        found = system.records_named(name)
        states = found[0].get("derivatives", {}) if found else {}
        ok = all(states.get(k, {}).get("status") == "ready" for k in ("poster", "storyboard"))
        return found[0] if ok else None

    video = wait_for(both_ready, timeout=180, interval=0.5, what="the poster and storyboard")
    page = browser.new_page()
    log_in(page, system)
    page.goto(f"{system.base_url}/videos/{video['id']}")
    expect(page.locator("#player-problem")).to_be_visible()
    still = page.locator("img#poster-still")
    expect(still).to_be_visible()
    wait_for(lambda: still.evaluate("i => i.complete && i.naturalWidth > 0"), timeout=30,
             what="the still to load")
    expect(page.locator("tr[data-derivative=poster] td")).to_have_text("Ready.")

    bar = page.locator("#seekbar")
    preview = page.locator("#seekbar .seek-preview")
    tile = preview.locator(".seek-tile")

    def hover_middle() -> dict[str, float]:
        box = bar.locator(".seek-track").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(preview).to_be_visible()
        wait_for(lambda: tile.evaluate("t => getComputedStyle(t).backgroundImage")
                 .startswith('url("'), timeout=10, what="the tile's sheet")
        return box

    track = hover_middle()
    shown = tile.bounding_box()
    assert shown is not None and shown["y"] + shown["height"] <= track["y"]  # above the bar
    assert tile.evaluate(SEEN_SHARE) == 1.0
    page.screenshot(path=str(output_dir / "derive-unplayable-preview.png"))

    page.mouse.move(0, 0)
    expect(preview).to_be_hidden()
    # the bar at the very top of the screen: no room above, so the preview goes below
    # (just under the page's header, which stays on screen)
    bar.evaluate("b => window.scrollBy(0, b.getBoundingClientRect().top"
                 " - document.querySelector('.topbar').getBoundingClientRect().bottom - 2)")
    track = hover_middle()
    shown = tile.bounding_box()
    assert shown is not None and shown["y"] >= track["y"] + track["height"]  # below the bar
    assert tile.evaluate(SEEN_SHARE) == 1.0
    page.screenshot(path=str(output_dir / "derive-unplayable-preview-below.png"))


def test_the_video_page_says_what_became_of_each_derivative(
        system: System, browser: BrowserContext, output_dir: Path,  # noqa: F811
        tmp_path: Path) -> None:
    """Before the derive role runs, each kind is said to be on its way; after, a black
    video's poster is said to be skipped with its reason, and the scenes card says what
    became of the scenes when they are not ready."""
    black = tmp_path / "black.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "color=black:size=320x240:rate=10:duration=3", "-c:v", "libvpx-vp9",
                    "-deadline", "realtime", "-cpu-used", "8", str(black)],
                   check=True, timeout=120)
    shutil.copy(black, system.inbox / black.name)
    video = system.wait_record(black.name)
    assert video["status"] == "ready"
    page = browser.new_page()
    log_in(page, system)
    page.goto(f"{system.base_url}/videos/{video['id']}")
    for kind, name in (("poster", "poster"), ("storyboard", "storyboard"),
                       ("scenes", "scene list")):
        expect(page.locator(f"tr[data-derivative={kind}] td")).to_have_text(
            f"The {name} is being made; it shows here when it is ready.")
    expect(page.locator("#scenes-state")).to_contain_text("The scene list is being made")
    page.screenshot(path=str(output_dir / "derive-states-pending.png"), full_page=True)

    system.start_role("derive")

    def settled() -> dict[str, Any] | None:
        found = system.records_named(black.name)
        states = found[0].get("derivatives", {}) if found else {}
        done = len(states) == len(KINDS) and all(
            s.get("status") != "pending" for s in states.values())
        return found[0] if done else None

    video = wait_for(settled, timeout=180, interval=0.5, what="the derivatives to settle")
    states = video["derivatives"]
    assert states["poster"]["status"] == "skipped", states
    page.reload()
    poster_row = page.locator("tr[data-derivative=poster]")
    expect(poster_row).to_have_attribute("data-derivative-status", "skipped")
    expect(poster_row.locator("td")).to_have_text(re.compile(r"^No poster: .+ \(no_picture\)\.$"))
    scenes = states["scenes"]["status"]
    if scenes == "ready":
        expect(page.locator("#scenes-state")).to_have_count(0)
        expect(page.locator("#scenes")).to_be_visible()
    else:
        expect(page.locator("#scenes-state")).to_contain_text(
            "No scene list:" if scenes == "skipped" else "The scene list could not be made:")
    page.screenshot(path=str(output_dir / "derive-states-settled.png"), full_page=True)
