"""The video page follows what is still being made, in Debian's Chromium, without a reload:
derivatives made while the page is open show up (the poster on the player, the storyboard
on the seek bar, the scenes card), and the rendition: "Preparing a version your browser
can play" while it is made, then the player plays it (docs/playback.md, "What a user
sees"). Screenshots go to test-output/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import requests
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.test_browser import PLAYABLE, browser, log_in  # noqa: F401
from tests.e2e.test_pages_http import logged_in
from tests.harness import System, rows, wait_for

NOT_RELOADED = "window.__notReloaded === true"  # set on the page; gone if it ever reloads
# how many times the page has asked for its live state
POLLS = ("() => performance.getEntriesByType('resource')"
         ".filter(e => e.name.includes('/live.json')).length")


def open_page(context: BrowserContext, system: System, video: dict[str, Any]) -> Page:
    """The video's page, logged in, marked so that a reload shows (:data:`NOT_RELOADED`)."""
    page = context.new_page()
    log_in(page, system)
    page.goto(f"{system.base_url}/videos/{video['id']}")
    page.evaluate("window.__notReloaded = true")
    return page


def test_derivatives_made_while_the_page_is_open_show_without_a_reload(
        system: System, browser: BrowserContext, samples: Path,  # noqa: F811
        output_dir: Path) -> None:
    shutil.copy(samples / PLAYABLE, system.inbox / PLAYABLE)
    video = system.wait_record(PLAYABLE)
    assert video["status"] == "ready"
    page = open_page(browser, system, video)
    article = page.locator("article#video")
    player = page.locator("video#player")
    expect(article).to_have_attribute("data-watching", "true")
    expect(page.locator("tr[data-derivative=poster] td")).to_have_text(
        "The poster is being made; it shows here when it is ready.")
    assert player.get_attribute("poster") is None
    assert page.locator("#seekbar").get_attribute("data-storyboard") is None
    expect(page.locator("#scenes-state")).to_be_visible()
    # the page asks, and keeps asking while the derive role is not running
    wait_for(lambda: page.evaluate(POLLS) >= 2, timeout=30, what="the page to poll twice")

    system.start_role("derive")
    token = video["api_links"]["access_token"]
    expect(player).to_have_attribute(  # with its version: videodrop/derivatives.py
        "poster", re.compile(rf"^/api/video/{token}/poster/\?v=[0-9]+$"), timeout=180_000)
    expect(page.locator("tr[data-derivative=poster] td")).to_have_text("Ready.")
    expect(page.locator("#seekbar")).to_have_attribute(
        "data-storyboard", f"/api/video/{token}/storyboard/", timeout=120_000)
    expect(page.locator("#scenes #scene-list li").first).to_be_visible(timeout=120_000)
    expect(page.locator("#scenes-state")).to_have_count(0)
    # nothing pending any more: the page stops asking
    expect(article).to_have_attribute("data-watching", "false", timeout=60_000)
    polls = page.evaluate(POLLS)
    assert page.evaluate(NOT_RELOADED)
    wait_for(lambda: player.evaluate("v => v.readyState >= 1"), timeout=30,
             what="the player's metadata")
    assert player.evaluate("v => v.videoWidth") > 0 and not player.evaluate("v => v.error")
    page.screenshot(path=str(output_dir / "video-page-live-derivatives.png"), full_page=True)
    page.wait_for_timeout(3000)  # a poll would come within 1 s if the page still polled
    assert page.evaluate(POLLS) == polls

    # what the page polled, over plain HTTP: a session's, never cached, said once settled
    http, _ = logged_in(system)
    live_url = f"{system.base_url}/videos/{video['id']}/live.json"
    live = http.get(live_url, timeout=5)
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    body = live.json()
    assert body["status"] == "ready" and body["pending"] is False
    assert body["derivatives"]["poster"] == "ready"
    assert body["poster_path"] == player.get_attribute("poster")
    assert body["stream_src"] == f"/stream/{token}/" and body["playback"]["playable"] is True
    assert 'data-derivative="poster" data-derivative-status="ready"' in body["html"]["states"]
    assert 'id="scenes"' in body["html"]["scenes"] and body["html"]["playback"] == ""
    assert requests.get(live_url, timeout=5).status_code == 401
    assert http.get(f"{system.base_url}/videos/999999/live.json",
                    timeout=5).status_code == 404


def test_the_rendition_s_state_under_the_player_follows_the_record(
        make_system, browser: BrowserContext, samples: Path,  # type: ignore[no-untyped-def]  # noqa: F811
        output_dir: Path) -> None:
    """Today's half of the rendition on the page: the record's rendition state (its row in
    ``derivatives``, written here as the derive role would; no other derivative is asked
    for) is said under the player and followed without a reload: preparing, then failed
    with its reason and the download link; the page then stops polling."""
    system: System = make_system(VIDEODROP_DERIVE="").start()
    name = "video-h265.mp4"
    shutil.copy(samples / name, system.inbox / name)
    video = system.wait_record(name)
    assert video["status"] == "ready" and video["playback"]["playable"] is False
    with psycopg.connect(system.database_url, autocommit=True) as db:
        db.execute("INSERT INTO derivatives (video_id, kind, status, queued_at)"
                   " VALUES (%s, 'rendition', 'pending', now()) ON CONFLICT (video_id, kind)"
                   " DO UPDATE SET status = 'pending', queued_at = now()", (video["id"],))
    page = open_page(browser, system, video)
    state = page.locator("#playback-state")
    expect(state).to_be_visible()
    expect(state).to_have_attribute("role", "status")
    expect(state).to_contain_text("Preparing a version your browser can play.")
    expect(state.get_by_role("link", name="Download")).to_have_attribute(
        "href", video["api_links"]["download_url"])
    expect(state.get_by_role("progressbar")).to_have_count(1)
    expect(page.locator("tr[data-derivative=rendition]")).to_have_attribute(
        "data-derivative-status", "pending")
    page.screenshot(path=str(output_dir / "video-page-preparing-today.png"))

    with psycopg.connect(system.database_url, autocommit=True) as db:
        db.execute("UPDATE derivatives SET status = 'failed', error_code = 'timeout',"
                   " error = 'ffmpeg took over 600 s' WHERE video_id = %s"
                   " AND kind = 'rendition'", (video["id"],))
    expect(state).to_contain_text(
        "A version your browser can play could not be made: ffmpeg took over 600 s (timeout)."
        " Download gives the original file.", timeout=20_000)
    expect(state.get_by_role("progressbar")).to_have_count(0)
    expect(page.locator("tr[data-derivative=rendition] td")).to_have_text(
        "The version for browsers could not be made: ffmpeg took over 600 s (timeout).")
    expect(page.locator("article#video")).to_have_attribute("data-watching", "false",
                                                            timeout=20_000)
    assert page.evaluate(NOT_RELOADED)
    page.screenshot(path=str(output_dir / "video-page-rendition-failed.png"))


def rendition_state(system: System, name: str) -> dict[str, Any]:
    found = system.records_named(name)
    return (found[0].get("playback") or {}) if found else {}


def test_the_page_prepares_a_playable_version_then_plays_it(
        system: System, browser: BrowserContext, samples: Path,  # noqa: F811
        output_dir: Path) -> None:
    """HEVC (Debian's Chromium has no decoder): with the derive role not yet running, the
    rendition waits (pending) and the page says it is being prepared, the player on the
    original; once the derive role has made it, the player switches to it without a
    reload and plays it, seeks to the middle and plays on."""
    name = "video-h265.mp4"
    shutil.copy(samples / name, system.inbox / name)
    video = system.wait_record(name)
    assert video["status"] == "ready"
    playback = video["playback"]
    assert playback["playable"] is False and playback["stream"] == "original", playback
    # waiting for the derive role (eager), or for a viewer (on-view: opening the page asks)
    assert playback["status"] == "pending" or (
        playback["status"] == "skipped" and playback["error_code"] == "on_view"), playback
    token = video["api_links"]["access_token"]

    page = open_page(browser, system, video)
    player = page.locator("video#player")
    state = page.locator("#playback-state")
    expect(state).to_be_visible()
    expect(state).to_contain_text("Preparing a version your browser can play")
    expect(state.get_by_role("link", name="Download")).to_have_attribute(
        "href", video["api_links"]["download_url"])
    expect(state.locator("progress")).to_have_count(1)
    expect(player).to_have_attribute("src", f"/stream/{token}/")  # the original meanwhile
    expect(player).to_have_attribute("data-stream", "original")
    page.screenshot(path=str(output_dir / "video-page-preparing.png"))

    system.start_role("derive")
    wait_for(lambda: rendition_state(system, name).get("status") == "ready", timeout=300,
             interval=0.2, what="the rendition")
    ready = rendition_state(system, name)
    assert ready["stream"] in ("remux", "transcode_audio", "transcode"), ready
    # the page switches within about a second of the record saying ready
    expect(player).to_have_attribute("data-stream", ready["stream"], timeout=5_000)
    expect(player).to_have_attribute("src", f"/stream/{token}/?v={ready['stream']}")
    expect(state).to_contain_text("Playing a version made for browsers")
    expect(page.locator("#player-problem")).to_be_hidden()
    assert page.evaluate(NOT_RELOADED)
    player.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => { const v = document.getElementById('player');"
                           " return v.currentTime > 0.3 && v.videoWidth > 0; }")
    middle = player.evaluate("v => v.duration") / 2
    player.evaluate(f"v => {{ v.currentTime = {middle}; }}")
    page.wait_for_function(f"() => {{ const v = document.getElementById('player');"
                           f" return !v.seeking && v.currentTime > {middle + 0.3}; }}")
    assert not player.evaluate("v => v.error")
    page.screenshot(path=str(output_dir / "video-page-rendition-playing.png"))


#: A browser that says it decodes HEVC: Debian's Chromium has no decoder, so its
#: ``canPlayType`` is told to say yes to ``hvc1`` (it then plays the sound over no picture).
SAYS_HEVC = """(() => {
  const plain = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return /codecs="hvc1\\./.test(type) ? "probably" : plain.call(this, type);
  };
})();"""
#: A browser that decodes HEVC, as Safari or Chrome with a hardware decoder does: it says
#: so, and shows a picture (the HEVC rendition's ``videoWidth`` is not 0).
HEVC_DECODER = SAYS_HEVC + """(() => {
  const plain = Object.getOwnPropertyDescriptor(HTMLVideoElement.prototype, "videoWidth");
  Object.defineProperty(HTMLVideoElement.prototype, "videoWidth", {
    get() {
      return plain.get.call(this) || (this.currentSrc.includes("rendition=hevc") ? 320 : 0);
    },
  });
})();"""


def test_a_browser_that_decodes_hevc_gets_the_hevc_rendition_and_no_transcode(
        make_system, browser: BrowserContext, samples: Path,  # type: ignore[no-untyped-def]  # noqa: F811
        output_dir: Path) -> None:
    """on-view, HEVC tagged hev1: the HEVC rendition (a copy) is made at once. A browser
    whose ``canPlayType`` says it decodes HEVC plays it and asks for no transcode; one that
    says so but shows no picture of it falls back to ``/stream/``, which asks for the
    transcode; Debian's Chromium as it is plays ``/stream/``, switches to the transcode once
    it is ready, and plays it."""
    system: System = make_system(VIDEODROP_TRANSCODE="on-view").start()
    system.start_role("derive")
    name = "video-h265.mp4"
    shutil.copy(samples / name, system.inbox / name)
    video = system.wait_record(name)
    token = video["api_links"]["access_token"]
    offered = wait_for(lambda: (rendition_state(system, name).get("hevc") or {}).get("path"),
                       timeout=120, interval=0.3, what="the HEVC rendition")
    assert offered == f"/stream/{token}/?rendition=hevc"
    wait_for(lambda: rendition_state(system, name).get("error_code") == "on_view",
             timeout=60, interval=0.3, what="the transcode to wait for a viewer")
    wanted = ("SELECT wanted_at IS NOT NULL FROM derivatives"
              " WHERE kind = 'rendition' AND video_id = %s")

    hevc_page = browser.new_page()
    hevc_page.add_init_script(HEVC_DECODER)
    log_in(hevc_page, system)
    hevc_page.goto(f"{system.base_url}/videos/{video['id']}")
    player = hevc_page.locator("video#player")
    expect(player).to_have_attribute("src", offered)
    expect(player).to_have_attribute("data-stream", "hevc")
    expect(hevc_page.locator("#playback-state")).to_contain_text("Playing the HEVC version")
    # the player read the HEVC rendition (its bytes came), and nothing asked for a transcode
    wait_for(lambda: hevc_page.evaluate(
        "() => performance.getEntriesByType('resource')"
        ".some(e => e.name.includes('rendition=hevc'))"), timeout=30,
        what="the player to read the HEVC rendition")
    assert rows(system.database_url, wanted, video["id"]) == [(False,)]
    hevc_page.screenshot(path=str(output_dir / "video-page-hevc-rendition.png"))
    hevc_page.close()

    # a browser that says it decodes HEVC but shows no picture of this one (a decoder's
    # limit): the page leaves the HEVC rendition for /stream/, whose read asks for the
    # transcode
    lying = browser.new_page()
    lying.add_init_script(SAYS_HEVC)
    lying.goto(f"{system.base_url}/videos/{video['id']}")
    player = lying.locator("video#player")
    expect(player).to_have_attribute("src", f"/stream/{token}/")
    expect(player).not_to_have_attribute("data-stream", "hevc")
    wait_for(lambda: rows(system.database_url, wanted, video["id"]) == [(True,)], timeout=30,
             what="the fallback's /stream/ to ask for the transcode")
    lying.close()

    page = browser.new_page()  # the same browser's session, without the init script
    page.goto(f"{system.base_url}/videos/{video['id']}")
    page.evaluate("window.__notReloaded = true")
    player = page.locator("video#player")
    expect(player).to_have_attribute("src", re.compile(rf"^/stream/{token}/"))
    expect(player).to_have_attribute("data-stream", "transcode", timeout=180_000)
    player.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => { const v = document.getElementById('player');"
                           " return v.currentTime > 0.3 && v.videoWidth > 0; }")
    assert page.evaluate(NOT_RELOADED)


def test_a_browser_that_decodes_hevc_waits_for_the_hevc_rendition_on_its_way(
        make_system, browser: BrowserContext, samples: Path,  # type: ignore[no-untyped-def]  # noqa: F811
        tmp_path: Path) -> None:
    """on-view, the derive role not yet running: the HEVC rendition is on its way
    (pending), as on the page of a video just made ready (an upload's page reloads then,
    before the derive job has copied it). A browser that decodes HEVC opening the page
    asks for no transcode and does not read ``/stream/`` (which would ask); the player
    plays the HEVC rendition once it is made. Where none comes (a TS cut short: corrupt
    packets: a video packet of the TS left out, no copy), the player falls back to
    ``/stream/``, and that read asks for the transcode."""
    system: System = make_system(VIDEODROP_TRANSCODE="on-view").start()
    name, cut = "video-h265.mp4", "damaged.ts"
    whole = tmp_path / "whole.ts"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000:duration=2", "-c:v", "libx265",
                    "-preset", "ultrafast", "-x265-params", "log-level=error", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", str(whole)], check=True, timeout=120)
    data = whole.read_bytes()
    packets = [data[at:at + 188] for at in range(0, len(data), 188)]
    video_middle = [i for i, p in enumerate(packets)  # PID 256, not a PES's first packet
                    if (p[1] & 0x1f) << 8 | p[2] == 256 and not p[1] & 0x40]
    left_out = video_middle[len(video_middle) // 2]  # ffprobe: "Packet corrupt"
    (system.inbox / cut).write_bytes(b"".join(p for i, p in enumerate(packets)
                                              if i != left_out))
    shutil.copy(samples / name, system.inbox / name)
    videos = {n: system.wait_record(n) for n in (name, cut)}
    for n in videos:
        assert (rendition_state(system, n).get("hevc") or {}).get("status") == "pending", n
    wanted = ("SELECT wanted_at IS NOT NULL FROM derivatives"
              " WHERE kind = 'rendition' AND video_id = %s")
    read_stream = ("() => performance.getEntriesByType('resource')"
                   ".filter(e => e.name.includes('/stream/')).map(e => e.name)")
    pages = {}
    for n, video in videos.items():
        page = browser.new_page()
        page.add_init_script(HEVC_DECODER)
        if not pages:
            log_in(page, system)
        page.goto(f"{system.base_url}/videos/{video['id']}")
        page.evaluate("window.__notReloaded = true")
        pages[n] = page
    for n, page in pages.items():
        wait_for(lambda p=page: p.evaluate(POLLS) >= 2, timeout=30,
                 what=f"the page of {n} to poll twice")
        assert page.evaluate(read_stream) == [], n
        assert rows(system.database_url, wanted, videos[n]["id"]) == [(False,)], n

    system.start_role("derive")
    token = videos[name]["api_links"]["access_token"]
    page = pages[name]
    player = page.locator("video#player")
    expect(player).to_have_attribute("src", f"/stream/{token}/?rendition=hevc",
                                     timeout=120_000)
    expect(player).to_have_attribute("data-stream", "hevc")
    expect(page.locator("#playback-state")).to_contain_text("Playing the HEVC version")
    wait_for(lambda: rendition_state(system, name).get("error_code") == "on_view",
             timeout=60, interval=0.3, what="the transcode to wait for a viewer")
    # (a player may read its source in several requests: what counts is which URLs)
    assert set(page.evaluate(read_stream)) == {
        f"{system.base_url}/stream/{token}/?rendition=hevc"}
    assert rows(system.database_url, wanted, videos[name]["id"]) == [(False,)]
    assert page.evaluate(NOT_RELOADED)

    cut_token = videos[cut]["api_links"]["access_token"]
    expect(pages[cut].locator("video#player")).to_have_attribute(
        "src", f"/stream/{cut_token}/", timeout=120_000)
    wait_for(lambda: rows(system.database_url, wanted, videos[cut]["id"]) == [(True,)],
             timeout=30, what="the fallback's /stream/ to ask for the transcode")
    assert rendition_state(system, cut)["hevc"] is None
    assert pages[cut].evaluate(NOT_RELOADED)
