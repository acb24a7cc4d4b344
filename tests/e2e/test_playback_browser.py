"""The playback verdict against a real browser: every camera-style variant
(testbed/camera_variants.py) and every sample in ../shared/samples goes through the
running system (inbox, prober, API), and Debian's Chromium plays each ready one from its
``/stream/`` URL. A record saying ``playable: true`` must play there (its time advances,
frames decode, ``videoWidth`` > 0, no error, and the picture has the orientation the
record's resolution says); whatever Chromium cannot play must say ``playable: false``.
(Chromium plays more than the verdict allows, MKV and 10-bit H.264 among them: the
verdict is what Firefox and Safari play too.) What Chromium did with each file goes to
test-output/playback-chromium.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from testbed.camera_variants import VARIANTS
from tests.e2e.test_browser import ARGS, CHROMIUM
from tests.harness import System

#: Per file: how long Chromium gets to show it plays (ms), and how far it must play.
BOUND_MS = 4000
ADVANCE = 0.3  # seconds, or half the video when it is shorter than 0.6 s

PLAY = """async ([url, bound, advance]) => {
  const v = document.createElement('video');
  v.muted = true; v.preload = 'auto'; v.src = url; document.body.replaceChildren(v);
  let error = null;
  v.addEventListener('error', () => { error = v.error ? `${v.error.code} ${v.error.message}`
                                                      : 'error'; });
  v.play().catch(e => { error = error || String(e); });
  const frames = () => v.getVideoPlaybackQuality().totalVideoFrames;
  const start = performance.now();
  await new Promise(resolve => {
    const look = () => {
      const goal = Math.min(advance, (v.duration || 2 * advance) / 2);
      if (error || v.ended || performance.now() - start > bound
          || (v.currentTime >= goal && v.videoWidth > 0 && frames() > 0)) resolve();
      else setTimeout(look, 25);
    };
    look();
  });
  const seen = {time: v.currentTime, width: v.videoWidth, height: v.videoHeight,
                frames: frames(), error, ended: v.ended, duration: v.duration};
  v.removeAttribute('src'); v.load();
  return seen;
}"""


def plays(seen: dict[str, Any]) -> bool:
    return (not seen["error"] and seen["time"] > 0 and seen["width"] > 0
            and seen["frames"] > 0)


@pytest.mark.timeout(900)
def test_what_the_record_calls_playable_plays_in_chromium(
        system: System, camera_corpus: Path, samples: Path, output_dir: Path) -> None:
    if not CHROMIUM.is_file():
        pytest.fail("Chromium is missing: apt-get install chromium (make test installs it)")
    files = [camera_corpus / v.name for v in VARIANTS]
    files += sorted(p for p in samples.iterdir() if p.suffix != ".md")
    for path in files:
        shutil.copyfile(path, system.inbox / path.name)
    records = {r["original_filename"]: r for r in
               system.wait_done(len(files), timeout=60 + 5 * len(files))}
    assert sorted(records) == sorted(p.name for p in files)
    assert all(records[v.name]["status"] == "ready" for v in VARIANTS)

    observed: dict[str, dict[str, Any]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{system.base_url}/healthz")  # the stream URLs' origin
            for name, rec in sorted(records.items()):
                if rec["status"] != "ready":
                    continue
                seen = page.evaluate(PLAY, [rec["api_links"]["stream_url"], BOUND_MS, ADVANCE])
                observed[name] = {"plays": plays(seen), "playback": rec["playback"],
                                  "resolution": rec["file_info"]["resolution"], **seen}
        finally:
            browser.close()
    (output_dir / "playback-chromium.json").write_text(json.dumps(observed, indent=1))

    wrong = []
    for name, seen in observed.items():
        verdict = seen["playback"]
        assert verdict["stream"] == "original" and verdict["unknown"] == [], name
        if verdict["playable"] and not seen["plays"]:
            wrong.append(f"{name}: playable, but Chromium: {seen}")
        if verdict["playable"] and f"{seen['width']}x{seen['height']}" != seen["resolution"]:
            wrong.append(f"{name}: Chromium shows {seen['width']}x{seen['height']}, the record"
                         f" says {seen['resolution']}")
        if not seen["plays"] and verdict["playable"] is not False:
            wrong.append(f"{name}: Chromium does not play it, the record says {verdict}")
    assert wrong == []
    # the oracle can tell: some of the corpus plays, some does not
    corpus = [observed[v.name]["plays"] for v in VARIANTS]
    assert any(corpus) and not all(corpus)
