"""The playback verdict on real files: every camera-style variant of
testbed/camera_variants.py probed by the real ffprobe (probe_file) gets the reasons and
the path its maker says, and every sample in ../shared/samples gets what docs/playback.md
lists for it. Whether a browser agrees is tests/e2e/test_playback_browser.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from prober.probe import probe_file
from testbed.camera_variants import VARIANTS, Variant
from tests.harness import System, rows, wait_for
from videodrop.playback import verdict

PLAYBACK_DOC = Path(__file__).resolve().parents[2] / "docs" / "playback.md"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_each_variant_gets_its_verdict(camera_corpus: Path, variant: Variant) -> None:
    result = probe_file(camera_corpus / variant.name)
    assert result.ok, result.error
    found = verdict(result.metadata)
    assert [code.value for code, _ in found.reasons] == list(variant.reasons)
    assert found.playable is variant.playable
    assert (found.needs.value if found.needs else None) == variant.needs
    assert found.unknown == ()


def test_the_corpus_is_what_its_names_say(camera_corpus: Path) -> None:
    """The premises, read back by ffprobe: the rotation written, the frame rate varying,
    the box order, and the MP2 in an MP4 that ffprobe itself calls mp3."""
    def probed(name: str) -> dict:  # type: ignore[type-arg]
        result = probe_file(camera_corpus / name)
        assert result.ok, result.error
        return result.metadata

    for variant in VARIANTS:
        if variant.rotation:
            meta = probed(variant.name)
            assert meta["rotation"] == variant.rotation
            assert meta["resolution"] == ("240x320" if variant.rotation % 180 else "320x240")
    assert probed("vfr.mp4")["video"]["variable_frame_rate"] is True
    assert probed("faststart.mp4")["moov_before_mdat"] is True
    assert probed("moov-at-end.mp4")["moov_before_mdat"] is False
    assert probed("h264-aac.ts")["moov_before_mdat"] is None
    mp2 = probed("h264-mp2.mp4")
    assert mp2["audio_codec"] == "mp2"
    assert mp2["warnings"] == ["audio stream 1: ffprobe names it mp3; its frames are mp2"
                               " (MPEG audio header)"]
    assert probed("h264-mp3.mp4")["audio_codec"] == "mp3"
    assert probed("hevc-hev1.mp4")["video"]["codec_tag"] == "hev1"
    assert probed("hevc-hvc1.mp4")["video"]["codec_tag"] == "hvc1"


def documented_samples() -> dict[str, tuple[str, str, str, str]]:
    """docs/playback.md's table of the samples: name -> (status, playable, reasons, needs)
    as written there (``—`` for none)."""
    text = PLAYBACK_DOC.read_text()
    table = text[text.index("| --- |", text.index("## The samples")):]
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \| (\S+) \| ([^|]+?) \| (\S+) \|", table,
                      flags=re.M)
    return {name: (status, playable, reasons, needs)
            for name, status, playable, reasons, needs in rows}


def test_every_sample_gets_the_verdict_the_docs_list(samples: Path) -> None:
    found = {}
    for path in sorted(p for p in samples.iterdir() if p.suffix != ".md"):
        result = probe_file(path)
        if not result.ok:
            found[path.name] = ("failed", "—", "—", "—")
            continue
        judged = verdict(result.metadata)
        found[path.name] = (
            "ready", str(judged.playable).lower(),
            ", ".join(f"`{code.value}`" for code, _ in judged.reasons) or "—",
            f"`{judged.needs.value}`" if judged.needs else "—")
    assert documented_samples() == found


def test_a_video_probed_before_the_box_order_was_kept_says_it_is_unknown(
        system: System, camera_corpus: Path) -> None:
    """Through the running system: a ready MP4's record says it plays; its row made like
    one probed before ``moov_before_mdat`` existed, the record and /metadata/ say the
    box order is unknown instead of guessing it."""
    shutil.copyfile(camera_corpus / "faststart.mp4", system.inbox / "old.mp4")
    rec = system.wait_record("old.mp4")
    # no derive role here: the rendition's request stays pending
    waiting = {"status": "pending", "error_code": None, "progress": None, "hevc": None}
    assert rec["playback"] == {"playable": True, "reasons": [], "needs": None, "unknown": [],
                               "stream": "original", **waiting}
    rows(system.database_url, "UPDATE videos SET metadata = metadata - 'moov_before_mdat'"
                              " WHERE id = %s RETURNING id", rec["id"])
    unknown = {"playable": None, "reasons": [], "needs": None, "unknown": ["moov_position"],
               "stream": "original", **waiting}

    def answers(url: str) -> dict[str, Any] | None:
        body = system.http.get(url, timeout=5).json()
        return body if body["playback"] == unknown else None

    wait_for(lambda: answers(rec["api_links"]["api_endpoint"]), timeout=10,
             what="the record to say the box order is unknown")
    metadata = wait_for(lambda: answers(rec["api_links"]["metadata_url"]), timeout=10,
                        what="/metadata/ to say the box order is unknown")
    assert "moov_before_mdat" not in metadata
