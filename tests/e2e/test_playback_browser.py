"""The playback verdict against a real browser: every camera-style variant
(testbed/camera_variants.py) and every sample in ../shared/samples goes through the
running system (inbox, prober, API), and Debian's Chromium plays each ready one from its
``/stream/`` URL. A record saying ``playable: true`` must play there (its time advances,
frames decode, ``videoWidth`` > 0, no error, and the picture has the orientation the
record's resolution says); whatever Chromium cannot play must say ``playable: false``.
Every file that plays also seeks to its middle and plays on from there (``seeked`` fires,
the time passes the seek point, new frames decode, no error). Every ready rendition
goes through the same check
(:func:`check`, one code path: a URL in, what Chromium did out).
(Chromium plays more than the verdict allows, MKV and 10-bit H.264 among them: the
verdict is what Firefox and Safari play too.) What Chromium did with each file goes to
test-output/playback-chromium.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from testbed.camera_variants import VARIANTS
from tests.e2e.test_browser import ARGS, CHROMIUM
from tests.harness import System, wait_for

#: Per file and phase (playing from the start, then from the middle): how long Chromium
#: gets to show it plays (ms), and how far it must play.
BOUND_MS = 4000
ADVANCE = 0.3  # seconds, or half what is left when that is shorter than 0.6 s

PLAY = """async ([url, bound, advance, known]) => {
  const v = document.createElement('video');
  v.muted = true; v.preload = 'auto'; v.src = url; document.body.replaceChildren(v);
  let error = null;
  v.addEventListener('error', () => { error = v.error ? `${v.error.code} ${v.error.message}`
                                                      : 'error'; });
  v.play().catch(e => { error = error || String(e); });
  const frames = () => v.getVideoPlaybackQuality().totalVideoFrames;
  const until = (done) => new Promise(resolve => {
    const start = performance.now();
    const look = () => {
      if (error || performance.now() - start > bound || done()) resolve();
      else setTimeout(look, 25);
    };
    look();
  });
  await until(() => v.ended || (v.currentTime >= Math.min(advance, (v.duration || 2 * advance) / 2)
                                && v.videoWidth > 0 && frames() > 0));
  const seen = {time: v.currentTime, width: v.videoWidth, height: v.videoHeight,
                frames: frames(), error, ended: v.ended, duration: v.duration, seek: null};
  // the media's duration, else the record's (a Matroska file without one: Infinity)
  const duration = Number.isFinite(v.duration) ? v.duration : known;
  if (!error && seen.time > 0 && seen.width > 0 && duration > 0) {
    // to the middle, and on from there
    const target = duration / 2;
    const goal = target + Math.min(advance, (duration - target) / 2);
    const before = frames();
    let seeked = false;
    v.addEventListener('seeked', () => { seeked = true; }, {once: true});
    v.currentTime = target;
    if (v.paused) v.play().catch(e => { error = error || String(e); });
    await until(() => seeked && !v.seeking && v.currentTime >= goal && frames() > before);
    seen.seek = {target, goal, seeked, time: v.currentTime, new_frames: frames() - before,
                 error};
  }
  v.removeAttribute('src'); v.load();
  return seen;
}"""


def plays(seen: dict[str, Any]) -> bool:
    return (not seen["error"] and seen["time"] > 0 and seen["width"] > 0
            and seen["frames"] > 0)


def seeks(seen: dict[str, Any]) -> bool:
    """It played on from the middle: ``seeked`` fired, the time passed the seek point by
    ``ADVANCE`` (or half what was left), new frames came, no error."""
    seek = seen["seek"]
    return bool(seek and seek["seeked"] and not seek["error"]
                and seek["time"] >= seek["goal"] and seek["new_frames"] > 0)


def check(page: Page, url: str, duration: float | None) -> dict[str, Any]:
    """What Chromium does with ``url`` (a ``/stream/`` URL of this page's origin; the
    record's ``duration`` in seconds, for a file whose duration Chromium cannot tell):
    PLAY's result, ``plays`` and ``seeks``."""
    seen = page.evaluate(PLAY, [url, BOUND_MS, ADVANCE, duration or 0])
    return {"plays": plays(seen), "seeks": seeks(seen), **seen}


def ingest(system: System, files: list[Path], timeout_per_file: float = 5
           ) -> dict[str, dict[str, Any]]:
    """``files`` dropped into the inbox, their records once probed, by file name."""
    for path in files:
        shutil.copyfile(path, system.inbox / path.name)
    records = {r["original_filename"]: r for r in
               system.wait_done(len(files), timeout=60 + timeout_per_file * len(files))}
    assert sorted(records) == sorted(p.name for p in files)
    return records


def corpus(camera_corpus: Path, samples: Path) -> list[Path]:
    return ([camera_corpus / v.name for v in VARIANTS]
            + sorted(p for p in samples.iterdir() if p.suffix != ".md"))


def in_chromium(base_url: str, targets: dict[str, tuple[str, float | None]]
                ) -> dict[str, dict[str, Any]]:
    """:func:`check` of each ``{label: (url, duration)}``, in one Chromium page of
    ``base_url``."""
    if not CHROMIUM.is_file():
        pytest.fail("Chromium is missing: apt-get install chromium (make test installs it)")
    observed: dict[str, dict[str, Any]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{base_url}/healthz")  # the stream URLs' origin
            for label, (url, duration) in targets.items():
                observed[label] = check(page, url, duration)
        finally:
            browser.close()
    return observed


def what_is_wrong(name: str, seen: dict[str, Any], playable: bool | None,
                  resolution: str | None, exact: bool = True) -> list[str]:
    """The checks of one file or rendition: ``playable`` (the verdict; True for a
    rendition) plays, seeks and shows ``resolution``'s orientation (its exact size when
    ``exact``, else its aspect ratio within 3 %); what does not play is not ``playable``.
    (What Chromium plays though the verdict says it does not need not seek: a Matroska
    file without a duration does not; its rendition must.)"""
    wrong = []
    if playable and not seen["plays"]:
        wrong.append(f"{name}: playable, but Chromium: {seen}")
    if playable and seen["plays"] and not seen["seeks"]:
        wrong.append(f"{name}: plays, but not on from the middle: {seen['seek']}")
    if playable and resolution:
        w, h = (int(n) for n in resolution.split("x"))
        shown = f"{seen['width']}x{seen['height']}"
        same = (shown == resolution if exact else seen["height"] > 0
                and abs(seen["width"] / seen["height"] / (w / h) - 1) <= 0.03)
        if not same:
            wrong.append(f"{name}: Chromium shows {shown}, the record says {resolution}")
    if not seen["plays"] and playable is not False:
        wrong.append(f"{name}: Chromium does not play it, the record says {playable}")
    return wrong


@pytest.mark.timeout(900)
def test_what_the_record_calls_playable_plays_and_seeks_in_chromium(
        system: System, camera_corpus: Path, samples: Path, output_dir: Path) -> None:
    records = ingest(system, corpus(camera_corpus, samples))
    assert all(records[v.name]["status"] == "ready" for v in VARIANTS)
    ready = {name: rec for name, rec in sorted(records.items()) if rec["status"] == "ready"}
    observed = in_chromium(system.base_url, {
        name: (rec["api_links"]["stream_url"], rec["file_info"]["duration"])
        for name, rec in ready.items()})
    (output_dir / "playback-chromium.json").write_text(json.dumps(
        {name: {"playback": ready[name]["playback"],
                "resolution": ready[name]["file_info"]["resolution"], **seen}
         for name, seen in observed.items()}, indent=1))

    wrong = []
    for name, seen in observed.items():
        verdict = ready[name]["playback"]
        assert verdict["stream"] == "original" and verdict["unknown"] == [], name
        wrong += what_is_wrong(name, seen, verdict["playable"],
                               ready[name]["file_info"]["resolution"])
    assert wrong == []
    # the oracle can tell: some of the corpus plays, some does not
    played = [observed[v.name]["plays"] for v in VARIANTS]
    assert any(played) and not all(played)


def rendition_settled(system: System, count: int) -> list[dict[str, Any]] | None:
    items = system.videos()
    settled = [v for v in items
               if (v.get("playback") or {}).get("status") not in (None, "pending")]
    return items if len(settled) >= count else None


@pytest.mark.timeout(1200)
def test_every_ready_rendition_plays_and_seeks_in_chromium(
        make_system, camera_corpus: Path, samples: Path,  # type: ignore[no-untyped-def]
        output_dir: Path) -> None:
    """What ``/stream/`` serves once the rendition is ready, through :func:`check` like
    the originals: it plays, seeks to the middle and plays on, upright. Every camera-style
    variant that does not play as it is ends with a ready rendition."""
    system: System = make_system(VIDEODROP_DERIVE="rendition", VIDEODROP_TRANSCODE="eager").start()
    system.start_role("derive")
    files = corpus(camera_corpus, samples)
    records = ingest(system, files)
    ready = [r for r in records.values() if r["status"] == "ready"]
    items = wait_for(lambda: rendition_settled(system, len(ready)), timeout=60 + 10 * len(ready),
                     interval=1, what="every rendition to settle")
    made = {v["original_filename"]: v for v in items
            if (v["playback"] or {}).get("status") == "ready"  # None: a failed video
            and v["playback"]["stream"] != "original"}
    not_playable = [v.name for v in VARIANTS if not v.playable]
    assert sorted(set(not_playable) - set(made)) == [], {
        n: records[n]["playback"] for n in not_playable if n not in made}
    observed = in_chromium(system.base_url, {
        name: (f"{v['api_links']['stream_url']}?v={v['playback']['stream']}",
               v["file_info"]["duration"])
        for name, v in sorted(made.items())})
    (output_dir / "playback-chromium-renditions.json").write_text(json.dumps(
        {name: {"playback": made[name]["playback"], **seen}
         for name, seen in observed.items()}, indent=1))
    wrong = []
    for name, seen in observed.items():
        wrong += what_is_wrong(f"{name} ({made[name]['playback']['stream']})", seen, True,
                               made[name]["file_info"]["resolution"], exact=False)
    assert wrong == []
