"""The web pages in a real browser (Debian's Chromium driven by Playwright) against the
real running system: log in, upload through the add page, watch the library go live,
play and seek, copy a link, rotate the token. Screenshots go to test-output/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.harness import System

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PLAYABLE = "bbb_input.webm"  # VP9/Opus: every Chromium build decodes it
OTHER = "bbb_chapters.mp4"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh Chromium profile per test; clipboard allowed (the copy buttons)."""
    if not CHROMIUM.is_file():
        pytest.fail("Chromium is missing: apt-get install chromium (make test installs it)")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), args=ARGS,
            headless=True, viewport={"width": 1280, "height": 900},
            permissions=["clipboard-read", "clipboard-write"])
        context.set_default_timeout(20_000)
        expect.set_options(timeout=30_000)
        try:
            yield context
        finally:
            context.close()


def log_in(page: Page, system: System) -> None:
    page.goto(f"{system.base_url}/")
    expect(page).to_have_url(f"{system.base_url}/login?next=%2F")
    page.get_by_label("Admin token").fill(system.admin_token)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{system.base_url}/")
    expect(page.get_by_role("heading", name="Library")).to_be_visible()


UNLABELLED = """() => Array.from(document.querySelectorAll('input, textarea, select, button'))
    .filter(el => el.type !== 'hidden' && !el.hidden)
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map(el => el.outerHTML.slice(0, 80))"""


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("#videos tbody tr", has=page.get_by_role("link", name=name, exact=True))


def test_upload_watch_play_copy_rotate(system: System, browser: BrowserContext, samples: Path,
                                       output_dir: Path, tmp_path: Path) -> None:
    library = browser.new_page()
    log_in(library, system)
    library.evaluate("window.__notReloaded = true")  # gone if the page ever reloads

    # --- add two files (and one the page refuses before sending) -----------------------
    add = browser.new_page()
    add.goto(f"{system.base_url}/source-management/add/?type=file")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    add.locator("#files").set_input_files([samples / PLAYABLE, samples / OTHER, notes])
    items = add.locator("#queue > li")
    expect(items).to_have_count(3)
    expect(items.nth(2)).to_have_attribute("data-state", "refused")
    expect(items.nth(2)).to_contain_text("Not a supported format")
    items.nth(0).get_by_label(f"Name of {PLAYABLE}").fill("Bunny in the woods")
    add.get_by_role("button", name="Upload 2 files").click()
    for i in (0, 1):
        expect(items.nth(i)).to_have_attribute("data-state", "done")
        expect(items.nth(i).locator(".qi-percent")).to_have_text("100%")
        assert items.nth(i).locator("progress").evaluate("p => p.value === p.max")
    expect(items.nth(0)).to_contain_text("Uploaded: Bunny in the woods")
    expect(add.locator("[data-status=ready]")).to_have_count(2)  # followed to ready
    assert add.evaluate(UNLABELLED) == []
    add.evaluate("window.scrollTo(0, 0)")
    add.screenshot(path=str(output_dir / "add.png"), full_page=True)
    for path in (samples / PLAYABLE, samples / OTHER):
        assert system.records_named(path.name), f"{path.name} not recorded"
    assert not system.records_named("notes.txt")  # never sent

    # --- the library, opened before the uploads, shows them ready: no reload -----------
    for name in ("Bunny in the woods", "bbb chapters"):
        expect(row(library, name)).to_have_attribute("data-status", "ready")
        expect(row(library, name).locator(".badge")).to_have_text("ready")
    assert library.evaluate("window.__notReloaded === true")
    expect(library.locator("[data-count=ready]")).to_have_text("2")
    assert library.evaluate(UNLABELLED) == []
    library.screenshot(path=str(output_dir / "library.png"), full_page=True)

    # --- the video page: play, seek -----------------------------------------------------
    library.get_by_role("link", name="Bunny in the woods", exact=True).click()
    expect(library.get_by_role("heading", name="Bunny in the woods")).to_be_visible()
    video = library.locator("#player")
    video.evaluate("v => v.readyState >= 1 || new Promise(r => v.addEventListener("
                   "'loadedmetadata', r, {once: true}))")
    library.locator("#player").click()  # the native controls: a click plays
    library.wait_for_function("() => { const v = document.getElementById('player');"
                              " return !v.paused && v.currentTime > 0.5; }")
    duration = video.evaluate("v => v.duration")
    assert 9 < duration < 11
    middle = duration / 2
    video.evaluate(f"v => {{ v.currentTime = {middle}; }}")
    library.wait_for_function(f"() => {{ const v = document.getElementById('player');"
                              f" return !v.seeking && !v.paused && v.currentTime > {middle + 0.5}"
                              f" && v.currentTime < {middle + 4}; }}")
    played = video.evaluate("v => Array.from({length: v.played.length}, "
                            "(_, i) => [v.played.start(i), v.played.end(i)])")
    assert any(start >= middle - 0.2 for start, _ in played), played  # played from there
    video.evaluate("v => v.pause()")
    table = library.locator("table.facts").first
    for fact in ("1280x720", "vp9", "opus", "60 fps", "1.3 MB"):
        expect(table).to_contain_text(fact)
    assert library.evaluate(UNLABELLED) == []
    library.screenshot(path=str(output_dir / "video.png"), full_page=True)

    # --- copy a link ---------------------------------------------------------------------
    stream = library.locator("#link-stream_url")
    old_link = stream.input_value()
    assert old_link.startswith(f"{system.base_url}/stream/")
    library.get_by_role("button", name="Copy Stream link").click()
    expect(library.get_by_role("button", name="Copy Stream link")).to_have_text("Copied ✓")
    assert library.evaluate("navigator.clipboard.readText()") == old_link
    assert requests.get(old_link, headers={"Range": "bytes=0-1"}, timeout=5).status_code == 206

    # --- delete asks first; from the keyboard, Escape keeps the video --------------------
    dialog = library.locator("dialog#confirm")
    library.get_by_role("button", name="Delete video").focus()
    library.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete this video?")
    library.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(library.get_by_role("button", name="Delete video")).to_be_focused()
    assert requests.get(old_link, headers={"Range": "bytes=0-1"}, timeout=5).status_code == 206

    # --- rotate the token: the old link answers 404 --------------------------------------
    library.get_by_role("button", name="Rotate token").click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Rotate").click()
    expect(library.locator(".notice")).to_contain_text("new token")
    new_link = stream.input_value()
    assert new_link != old_link and new_link.startswith(f"{system.base_url}/stream/")
    assert requests.get(old_link, timeout=5).status_code == 404
    resp = requests.get(new_link, headers={"Range": "bytes=0-99"}, timeout=5)
    assert resp.status_code == 206 and len(resp.content) == 100
    expect(library.locator("#player")).to_have_attribute(
        "src", "/stream/" + new_link.rsplit("/stream/", 1)[1])

    # --- rotate with an expiry: the new token ends in a day ---------------------------
    library.get_by_role("button", name="Rotate token").click()
    dialog.get_by_label("The new links expire").select_option(label="in 1 day")
    dialog.get_by_role("button", name="Rotate").click()
    expect(library.locator(".notice")).to_contain_text("new token")
    expect(library.locator("#links-title + p")).to_contain_text("The token expires")
    video_id = library.locator("#video").get_attribute("data-id")
    rec = requests.get(f"{system.base_url}/api/videos/{video_id}", headers=system.admin,
                       timeout=5).json()
    ends = datetime.fromisoformat(rec["token_expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < ends - datetime.now(UTC) <= timedelta(days=1)


def test_login_logout_and_a_wrong_token(system: System, browser: BrowserContext) -> None:
    page = browser.new_page()
    page.goto(f"{system.base_url}/videos/1")
    expect(page).to_have_url(f"{system.base_url}/login?next=%2Fvideos%2F1")
    page.get_by_label("Admin token").fill("not-the-token")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")
    page.get_by_label("Admin token").fill(system.admin_token)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{system.base_url}/videos/1")  # back where it was going
    expect(page.get_by_role("heading", name="No such video")).to_be_visible()
    cookie = next(c for c in browser.cookies() if c["name"] == "videodrop_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert system.admin_token not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # invisible to scripts
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).to_have_url(f"{system.base_url}/login?done=loggedout")
    page.goto(f"{system.base_url}/")
    expect(page).to_have_url(f"{system.base_url}/login?next=%2F")


def test_add_page_verdicts_and_arrivals(make_system, browser: BrowserContext, samples: Path,
                                        output_dir: Path) -> None:
    """Too large is refused in the browser; a duplicate source_id by the server (shown);
    a file sitting in the inbox shows up in the library as arriving; phone width works."""
    system: System = make_system(VIDEODROP_MAX_FILE_SIZE="1MB").start("api", "prober")
    page = browser.new_page()
    log_in(page, system)
    page.goto(f"{system.base_url}/upload")
    page.locator("#files").set_input_files([samples / PLAYABLE])  # 1.3 MB > 1 MB
    item = page.locator("#queue > li").first
    expect(item).to_have_attribute("data-state", "refused")
    expect(item).to_contain_text("Too large")
    expect(page.get_by_role("button", name="Upload")).to_be_disabled()
    page.get_by_role("button", name="Clear finished").click()

    page.get_by_text("Details (optional)").click()
    for expected in ("done", "error"):  # the same source_id twice: the server says 409
        page.get_by_label("Source id").fill("camera-7")
        page.locator("#files").set_input_files([samples / "tiny_av1.mp4"])
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#queue > li").last).to_have_attribute("data-state", expected)
    expect(page.locator("#queue > li").last).to_contain_text("Refused by the server — Conflict")
    assert [v["source_id"] for v in system.videos()] == ["camera-7"]

    # a file nobody has claimed yet (ingest is not running): listed as arriving
    shutil.copy(samples / "sar_2x1.mp4", system.inbox / "waiting.mp4")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{system.base_url}/")
    expect(page.locator("#arriving")).to_contain_text("waiting.mp4")
    expect(row(page, "tiny av1")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(output_dir / "library-phone.png"), full_page=True)
    sorts = page.locator("#videos thead th.sortable a")  # the sort bar of a phone
    expect(sorts).to_have_text(["Name", "Duration", "Size", "Added▼"])
    sorts.filter(has_text="Size").click()
    expect(page).to_have_url(f"{system.base_url}/?sort=-size")
    expect(row(page, "tiny av1")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("link", name="tiny av1", exact=True).click()
    expect(page.get_by_role("heading", name="tiny av1")).to_be_visible()
    expect(page.get_by_role("button", name="Copy Stream link")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # revoke, then delete, each after its confirmation
    old_link = page.locator("#link-api_endpoint").input_value()
    page.get_by_role("button", name="Revoke token").click()
    page.locator("dialog#confirm").get_by_role("button", name="Revoke").click()
    expect(page.locator(".notice")).to_contain_text("revoked")
    expect(page.locator("#link-api_endpoint")).to_have_count(0)
    assert requests.get(old_link, timeout=5).status_code == 404
    page.get_by_role("button", name="Delete video").click()
    page.locator("dialog#confirm").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{system.base_url}/?done=deleted")
    expect(row(page, "tiny av1")).to_have_count(0)
    assert system.videos() == []


@pytest.mark.parametrize(("sample", "playable"), [
    ("xbox.wmv", False),  # no WMV demuxer in a browser: the element fails
    ("video-h265.mp4", False),    # HEVC: Debian's Chromium has no decoder
    (PLAYABLE, True),
])
def test_the_player_says_when_the_browser_cannot_play(system: System, browser: BrowserContext,
                                                      samples: Path, output_dir: Path, *,
                                                      sample: str, playable: bool) -> None:
    from tests.integration.test_api_uploads import ready_upload

    rec = ready_upload(system, samples / sample)
    page = browser.new_page()
    log_in(page, system)
    page.goto(f"{system.base_url}/videos/{rec['id']}")
    player = page.locator("#player")
    # wait until the element has either failed or loaded its metadata
    player.evaluate("v => v.error || v.readyState >= 1 || new Promise(r => {"
                    " v.addEventListener('error', r, {once: true});"
                    " v.addEventListener('loadedmetadata', r, {once: true}); })")
    problem = page.locator("#player-problem")
    if playable:
        expect(problem).to_be_hidden()
        assert player.evaluate("v => v.videoWidth") > 0
        return
    expect(problem).to_be_visible()
    expect(problem).to_contain_text(f"This browser cannot play {rec['file_info']['codec']}")
    link = problem.get_by_role("link", name="download it")
    assert link.get_attribute("href") == rec["api_links"]["download_url"]
    page.screenshot(path=str(output_dir / f"unplayable-{sample}.png"))


def test_the_library_shows_a_dozen_rows_at_1280x800(system: System, browser: BrowserContext,
                                                    output_dir: Path) -> None:
    """At 1280x800 at least 12 rows fit; a row's date stays on one line and its source_id
    is never broken inside (cut with an ellipsis, whole in its title)."""
    from videodrop.catalog import Catalog
    from videodrop.errorcodes import ErrorCode

    catalog = Catalog.connect(system.database_url)
    try:
        for i in range(16):
            video = catalog.create_upload(
                filename=f"Front door 2026-11-30 {i:02d}.mp4",
                source_id=f"file_20261130_1235{i:02d}_96e1b7c8243d{i:02d}")
            if i % 4 == 0:
                catalog.mark_failed(video.id, "not a media file: ffprobe found no streams "
                                    "and no container it could read in the first bytes",
                                    ErrorCode.NOT_MEDIA)
    finally:
        catalog.close()
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, system)
    rows = page.locator("#videos tbody tr")
    expect(rows).to_have_count(16)
    page.screenshot(path=str(output_dir / "library-1280x800.png"))
    fits = page.evaluate("() => Array.from(document.querySelectorAll('#videos tbody tr'))"
                         ".filter(r => r.getBoundingClientRect().bottom <= innerHeight).length")
    assert fits >= 12, fits
    lines = page.evaluate("""() => Array.from(document.querySelectorAll(
        '#videos tbody td[data-label=Added] time, #videos tbody .source-id')).map(el =>
          Math.round(el.getBoundingClientRect().height
                     / parseFloat(getComputedStyle(el).lineHeight)))""")
    assert len(lines) == 32 and set(lines) == {1}, lines
    first = page.locator("#videos tbody tr .source-id").first
    assert first.get_attribute("title") == first.evaluate("e => e.textContent.trim()")


def test_the_library_sorts_by_its_column_headers(system: System, browser: BrowserContext,
                                                 output_dir: Path) -> None:
    """A click on Name, Duration, Size or Added sorts by it (a second click the other way):
    the URL keeps the sort, the header says it (aria-sort), and the live list puts a new
    video where the sort wants it, without a reload."""
    from videodrop.catalog import Catalog

    durations = {"Alpha": 30.0, "Bravo": None, "Charlie": 5.0, "Delta": 120.0, "Echo": 60.0}
    catalog = Catalog.connect(system.database_url)
    try:
        made = {name: catalog.create_upload(filename=f"{name.lower()}.mp4", name=name,
                                            source_id=f"sort-{name.lower()}")
                for name in ("Charlie", "Alpha", "Echo", "Bravo", "Delta")}
    finally:
        catalog.close()
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        for name, video in made.items():
            conn.execute("UPDATE videos SET status = 'ready', duration = %s, size = %s"
                         " WHERE id = %s", (durations[name], 1000 * len(name), video.id))
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, system)
    page.evaluate("window.__notReloaded = true")
    names = page.locator("#videos tbody tr .name-cell a")
    header = page.locator("#videos thead th")
    expect(names).to_have_text(["Delta", "Bravo", "Echo", "Alpha", "Charlie"])  # newest
    expect(header.filter(has_text="Added")).to_have_attribute("aria-sort", "descending")

    header.get_by_role("link", name="Name").click()
    expect(page).to_have_url(f"{system.base_url}/?sort=name")
    expect(names).to_have_text(["Alpha", "Bravo", "Charlie", "Delta", "Echo"])
    expect(header.filter(has_text="Name")).to_have_attribute("aria-sort", "ascending")
    assert header.filter(has_text="Added").get_attribute("aria-sort") is None
    assert page.locator("#videos caption").text_content() == "Videos, by name, A to Z"

    page.evaluate("window.__notReloaded = true")  # a new page load: mark it again
    catalog = Catalog.connect(system.database_url)
    try:
        catalog.create_upload(filename="bongo.mp4", name="Bongo", source_id="sort-bongo")
    finally:
        catalog.close()
    expect(names).to_have_text(["Alpha", "Bongo", "Bravo", "Charlie", "Delta", "Echo"])
    assert page.evaluate("window.__notReloaded === true")

    header.get_by_role("link", name="Name").click()
    expect(page).to_have_url(f"{system.base_url}/?sort=-name")
    expect(header.filter(has_text="Name")).to_have_attribute("aria-sort", "descending")
    expect(names).to_have_text(["Echo", "Delta", "Charlie", "Bravo", "Bongo", "Alpha"])

    header.get_by_role("link", name="Duration").click()  # longest first; unknown last
    expect(page).to_have_url(f"{system.base_url}/?sort=-duration")
    expect(names).to_have_text(["Delta", "Echo", "Alpha", "Charlie", "Bongo", "Bravo"])
    header.get_by_role("link", name="Size").click()
    expect(page).to_have_url(f"{system.base_url}/?sort=-size")
    expect(header.filter(has_text="Size")).to_have_attribute("aria-sort", "descending")
    page.get_by_label("Search by name, file name, source id or origin").fill("ha")
    page.get_by_role("button", name="Search").click()  # the search keeps the sort
    expect(page).to_have_url(f"{system.base_url}/?sort=-size&q=ha")
    expect(names).to_have_text(["Charlie", "Alpha"])
    page.screenshot(path=str(output_dir / "library-sorted.png"))
    assert page.evaluate(UNLABELLED) == []
