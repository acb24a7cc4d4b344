"""The playback verdict (videodrop/playback.py) on metadata written by hand in the prober's
shape, the facts the prober reads for it (box order, MPEG audio layer), and the record's
``playback``. The verdict on real files is tests/integration/test_playback_corpus.py; the
browser that checks it, tests/e2e/test_playback_browser.py."""

from __future__ import annotations

import re
import struct
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.openapi import SCHEMAS
from prober.browser_facts import mpeg_audio_layer
from prober.isobmff import Boxes, top_level_boxes
from videodrop import playback
from videodrop.catalog import Video
from videodrop.playback import DESCRIPTIONS, Needs, Reason, verdict
from videodrop.records import metadata as metadata_of
from videodrop.records import playback_state, record

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def meta(fmt: str = "mp4", video: str | None = "h264", pix_fmt: str | None = "yuv420p",
         audio: list[str | None] | None = None, **extra: Any) -> dict[str, Any]:
    """Metadata as prober.metadata writes it, with only what the verdict reads."""
    tracks = [{"index": i + 1, "codec": c, "default": i == 0}
              for i, c in enumerate(["aac"] if audio is None else audio)]
    found: dict[str, Any] = {
        "format": fmt, "codec": video, "audio_tracks": tracks,
        "video": {"codec": video, "codec_tag": extra.pop("tag", None), "pix_fmt": pix_fmt,
                  "profile": extra.pop("profile", "High"), "level": extra.pop("level", None)},
        "moov_before_mdat": True if fmt in playback.ISO_BMFF else None,
    }
    return {**found, **extra}


def codes(metadata: dict[str, Any]) -> list[str]:
    return [code.value for code, _detail in verdict(metadata).reasons]


def test_h264_aac_in_a_faststart_mp4_plays_as_it_is() -> None:
    found = verdict(meta())
    assert (found.playable, found.reasons, found.needs, found.unknown) == (True, (), None, ())
    assert found.as_json() == {"playable": True, "reasons": [], "needs": None, "unknown": []}


@pytest.mark.parametrize(("metadata", "expected"), [
    (meta("mov"), []),
    (meta("m4v", audio=["mp3"]), []),
    (meta("webm", "vp9", audio=["opus"]), []),
    (meta("webm", "vp8", audio=["vorbis"]), []),
    (meta("mp4", "av1", audio=["opus"]), []),
    (meta(audio=[]), []),
    (meta(pix_fmt="yuvj420p"), []),
    (meta(moov_before_mdat=False), ["moov_at_end"]),
    (meta("avi", audio=["mp3"]), ["container"]),
    (meta("ts"), ["container"]),
    (meta("mkv", "vp9", audio=["vorbis"]), ["container"]),
    (meta("3gp", moov_before_mdat=False), ["container", "moov_at_end"]),
    (meta("hevc", "hevc", audio=[]), ["container", "video_codec"]),
    (meta(video="hevc", tag="hev1"), ["video_codec", "hevc_tag"]),
    (meta(video="hevc", tag="hvc1"), ["video_codec"]),
    (meta("mkv", "hevc", tag="hev1"), ["container", "video_codec"]),  # no tag outside MP4
    (meta(pix_fmt="yuv422p"), ["pixel_format"]),
    (meta(pix_fmt="yuv420p10le", profile="High 10"), ["pixel_format"]),
    (meta(profile="High 4:4:4 Predictive"), ["video_codec"]),
    (meta("webm", "vp9", "yuv420p10le", audio=["opus"]), ["pixel_format"]),
    (meta("mov", audio=["pcm_s16be"]), ["audio_codec"]),
    (meta("mov", audio=["pcm_mulaw"]), ["audio_codec"]),
    (meta(audio=["mp2"]), ["audio_codec"]),
    (meta(audio=["vorbis"]), ["audio_codec"]),  # beside H.264: no browser container
    (meta("mp4", "vp8", audio=["aac"]), ["container", "audio_codec"]),
    (meta("wmv", "wmv2", audio=["wmav2"]), ["container", "video_codec", "audio_codec"]),
])
def test_each_reason_is_found(metadata: dict[str, Any], expected: list[str]) -> None:
    assert codes(metadata) == expected
    assert verdict(metadata).playable is (not expected)


@pytest.mark.parametrize(("metadata", "needs", "target"), [
    (meta(), None, None),
    (meta(moov_before_mdat=False), Needs.REMUX, "mp4"),
    (meta("flv"), Needs.REMUX, "mp4"),
    (meta("mkv", "vp9", audio=["vorbis"]), Needs.REMUX, "webm"),  # WebM keeps Vorbis
    (meta("mkv", "vp9", audio=["aac"]), Needs.REMUX, "mp4"),  # MP4 keeps AAC
    (meta("mkv", "vp8", audio=["vorbis"]), Needs.REMUX, "webm"),
    (meta("mov", audio=["pcm_s16le"]), Needs.TRANSCODE_AUDIO, "mp4"),
    (meta("avi", audio=["pcm_s16le"]), Needs.TRANSCODE_AUDIO, "mp4"),
    (meta("mp4", "vp8", audio=["aac"]), Needs.TRANSCODE_AUDIO, "webm"),
    (meta(video="hevc", tag="hev1"), Needs.TRANSCODE, "mp4"),
    (meta("avi", "mjpeg", "yuvj420p", audio=["pcm_s16le"]), Needs.TRANSCODE, "mp4"),
])
def test_the_cheapest_path_is_named(metadata: dict[str, Any], needs: Needs | None,
                                    target: str | None) -> None:
    found = verdict(metadata)
    assert (found.needs, found.target) == (needs, target)


def test_the_details_name_what_the_file_has() -> None:
    details = dict(verdict(meta("avi", "mpeg4", audio=["pcm_mulaw"])).reasons)
    assert details == {Reason.CONTAINER: "the container is AVI",
                       Reason.VIDEO_CODEC: "video is MPEG-4 Part 2 (mpeg4)",
                       Reason.AUDIO_CODEC: "audio is G.711 mu-law (pcm_mulaw)"}
    assert dict(verdict(meta("mp4", "vp8", audio=[])).reasons) == {
        Reason.CONTAINER: "vp8 in MP4: browsers play it in WebM"}


def test_the_track_a_browser_picks_is_judged() -> None:
    tracks = [{"index": 1, "codec": "pcm_s16le", "default": False},
              {"index": 2, "codec": "aac", "default": True}]
    assert codes(meta(audio_tracks=tracks)) == []
    undefaulted = [{**t, "default": False} for t in reversed(tracks)]
    assert codes(meta(audio_tracks=undefaulted)) == []  # the first: aac
    assert codes(meta(audio_tracks=[{**t, "default": False} for t in tracks])) == [
        "audio_codec"]


def test_a_record_probed_before_the_box_order_was_kept_says_it_is_unknown() -> None:
    old = meta()
    del old["moov_before_mdat"]
    found = verdict(old)
    assert (found.playable, found.reasons, found.needs, found.unknown) == (
        None, (), None, ("moov_position",))
    # a known reason decides playable; the unknown box order cannot make the path dearer
    pcm = meta("mov", audio=["pcm_s16be"])
    del pcm["moov_before_mdat"]
    assert (verdict(pcm).playable, verdict(pcm).needs) == (False, Needs.TRANSCODE_AUDIO)
    # a container that has no boxes needs no box order
    avi = meta("avi")
    del avi["moov_before_mdat"]
    assert verdict(avi).unknown == ()


def test_an_unknown_fact_that_could_make_the_path_dearer_leaves_needs_unset() -> None:
    found = verdict(meta("avi", pix_fmt=None))
    assert (found.playable, found.needs, found.unknown) == (False, None, ("pixel_format",))
    assert verdict(meta("avi", video="mpeg4", pix_fmt=None)).needs == Needs.TRANSCODE


def test_every_reason_is_described_and_documented() -> None:
    assert set(DESCRIPTIONS) == set(Reason)
    text = API_DOC.read_text()
    table = text[text.index("| --- |", text.index("## Playback in browsers")):]
    listed = re.findall(r"^\| `([a-z_]+)` \|", table[: table.index("\n\n")], flags=re.M)
    assert listed == [code.value for code in Reason]
    schema = SCHEMAS["Playback"]["properties"]
    assert schema["reasons"]["items"]["properties"]["code"]["enum"] == [r.value for r in Reason]
    assert schema["needs"]["enum"] == [n.value for n in Needs] + [None]
    assert schema["unknown"]["items"]["enum"] == list(playback.UNKNOWN_FACTS)


@pytest.mark.parametrize(("header", "codec"), [
    (b"\xff\xfb\x90\x64", "mp3"),  # MPEG-1 Layer III
    (b"\xff\xfd\xe4\xc4", "mp2"),  # MPEG-1 Layer II (what ffmpeg's mp2 encoder wrote)
    (b"\xff\xf5\x00\x00", "mp2"),  # MPEG-2 Layer II
    (b"\xff\xff\x00\x00", "mp1"),  # Layer I
    (b"\xff\xf9\x50\x80", None),  # ADTS (AAC): layer bits 00
    (b"\x00\x00\x01\xba", None),
    (b"\xff", None),
])
def test_the_mpeg_audio_layer_is_read_from_the_frame_header(header: bytes,
                                                            codec: str | None) -> None:
    assert mpeg_audio_layer(header) == codec


@pytest.mark.parametrize(("kinds", "first"), [
    (["ftyp", "moov", "free", "mdat"], True),
    (["ftyp", "free", "mdat", "moov"], False),
    (["ftyp", "moov", "moof", "mdat", "moof", "mdat"], True),  # fragmented
    (["ftyp", "moov"], True),
    (["ftyp", "free", "mdat"], False),  # (a listing stopped at the first of the two)
    (["ftyp", "free"], None),
])
def test_the_box_order_says_where_the_index_is(kinds: list[str], first: bool | None) -> None:
    assert Boxes(kinds, 0, None, 0).moov_first is first


def test_the_box_walk_stops_at_the_first_index_or_media_data(tmp_path: Path) -> None:
    def box(kind: bytes, body: bytes = b"") -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    fragmented = tmp_path / "fragmented.mp4"
    fragmented.write_bytes(box(b"ftyp", b"isom") + box(b"moov")
                           + (box(b"moof") + box(b"mdat", b"x")) * 1000)
    found = top_level_boxes(fragmented, stop_at=frozenset({"moov", "mdat"}))
    assert found is not None and found.kinds == ["ftyp", "moov"] and found.moov_first
    at_end = tmp_path / "at_end.mp4"
    at_end.write_bytes(box(b"ftyp", b"isom") + box(b"free") + box(b"mdat", b"x" * 100)
                       + box(b"moov"))
    found = top_level_boxes(at_end, stop_at=frozenset({"moov", "mdat"}))
    assert found is not None and found.kinds == ["ftyp", "free", "mdat"]
    assert found.moov_first is False
    whole = top_level_boxes(at_end)
    assert whole is not None and whole.kinds[-1] == "moov" and whole.moov_first is False


def _video(status: str, metadata: dict[str, Any]) -> Video:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    return Video(
        id=1, source_id="file_1", name="clip", description="", status=status,
        access_token="t" * 43, token_expires_at=None, original_filename="clip.mp4",
        origin="upload", origin_path=None, stored_path="videos/file_1/clip.mp4", size=10,
        sha256=None, format="mp4", duration=1.0, resolution="320x240", fps=25.0,
        codec="h264", audio_codec="aac", metadata=metadata, processing_started_at=now,
        processing_completed_at=now, processing_error=None, error_code=None, attempts=1,
        claim_dev=None, claim_ino=None, claim_size=None, claim_mtime_ns=None,
        claim_ctime_ns=None, created_at=now, updated_at=now)


def test_the_record_and_the_metadata_carry_playback_once_ready() -> None:
    ready = _video("ready", meta(moov_before_mdat=False))
    expected = {"playable": False, "reasons": [{"code": "moov_at_end",
                                                "detail": "moov after mdat"}],
                "needs": "remux", "unknown": [], "stream": "original", "status": None,
                "error_code": None, "progress": None, "hevc": None}
    assert playback_state(ready) == expected
    assert record(ready, "http://x")["playback"] == expected
    assert metadata_of(ready)["playback"] == expected
    assert metadata_of(ready)["moov_before_mdat"] is False
    for status in ("uploading", "processing", "failed"):
        assert record(replace(ready, status=status), "http://x")["playback"] is None
    making = replace(ready, derivatives={"rendition": {
        "status": "pending", "error": None, "error_code": None, "remaking": False,
        "progress": 0.4213, "file": None, "stream": None}})
    assert playback_state(making) == expected | {"status": "pending", "progress": 0.421}
    assert record(making, "http://x")["derivatives"] == {"rendition": {
        "status": "pending", "error": None, "error_code": None, "remaking": False}}
    made = replace(ready, derivatives={"rendition": {
        "status": "ready", "error": None, "error_code": None, "remaking": False,
        "progress": None, "file": "derivatives/file_1/rendition.mp4", "stream": "remux"}})
    assert playback_state(made) == expected | {"status": "ready", "stream": "remux"}


HEVC = {"profile": "Main", "level": 93}


@pytest.mark.parametrize(("metadata", "copyable", "where_hevc_decodes"), [
    (meta(video="hevc", tag="hvc1", **HEVC), True, []),
    (meta(video="hevc", tag="hev1", **HEVC), True, ["hevc_tag"]),
    (meta(video="hevc", tag="hvc1", moov_before_mdat=False, **HEVC), True, ["moov_at_end"]),
    (meta("ts", video="hevc", **HEVC), True, ["container"]),
    (meta("mkv", video="hevc", audio=["opus"], **HEVC), True, ["container"]),
    (meta(video="hevc", pix_fmt="yuv420p10le", profile="Main 10", level=93), False,
     ["pixel_format"]),
    (meta(video="hevc", pix_fmt="yuv422p", profile="Rext", level=93), False,
     ["pixel_format"]),
    (meta("mov", video="hevc", tag="hvc1", audio=["pcm_s16le"], **HEVC), False,
     ["audio_codec"]),
    (meta("avi", video="hevc", **HEVC), False, ["container"]),  # no pts to copy
    (meta(), False, []),  # H.264: the rendition serves every browser
])
def test_hevc_is_judged_for_browsers_that_decode_it(metadata: dict[str, Any], copyable: bool,
                                                    where_hevc_decodes: list[str]) -> None:
    judged = [code.value for code, _ in verdict(metadata, hevc=True).reasons]
    assert judged == where_hevc_decodes
    assert playback.hevc_copyable(metadata) is copyable
    if metadata["codec"] == "hevc":  # the strict verdict: no HEVC in the intersection
        assert "video_codec" in codes(metadata) and verdict(metadata).needs is Needs.TRANSCODE


def test_the_hevc_type_names_profile_and_level_for_can_play_type() -> None:
    assert playback.hevc_type(meta(video="hevc", **HEVC)) == \
        'video/mp4; codecs="hvc1.1.6.L93.B0"'
    assert playback.hevc_type(meta(video="hevc", profile="Main", level=150)) == \
        'video/mp4; codecs="hvc1.1.6.L150.B0"'
    # an unknown level asks for the highest a browser knows: one that cannot tell refuses
    assert playback.hevc_type(meta(video="hevc", profile="Main", level=None)) == \
        'video/mp4; codecs="hvc1.1.6.L186.B0"'


def test_the_record_offers_the_hevc_rendition_once_ready() -> None:
    from derive.rendition import Plan, Skipped, plan_hevc
    from videodrop.records import hevc_file
    from videodrop.settings import Settings

    hev1 = meta(video="hevc", tag="hev1", **HEVC)
    settings = Settings.from_env({})
    assert plan_hevc(hev1, settings) == Plan("remux", "mp4", "hevc")
    assert plan_hevc(hev1, settings).file_name == "hevc.mp4"
    assert plan_hevc(meta(video="hevc", tag="hvc1", **HEVC), settings).stream == "original"
    for other, code in ((meta(), "not_needed"),
                        (meta(video="hevc", pix_fmt="yuv420p10le", **HEVC), "no_path"),
                        (meta(video="hevc", warnings=["ffprobe: Packet corrupt (x)"], **HEVC),
                         "no_path")):
        with pytest.raises(Skipped) as skipped:
            plan_hevc(other, settings)
        assert skipped.value.reason.value == code
    with pytest.raises(Skipped) as off:
        plan_hevc(hev1, Settings.from_env({"VIDEODROP_RENDITIONS": "off"}))
    assert off.value.reason.value == "renditions_off"

    state = {"error": None, "error_code": None, "remaking": False, "progress": None}
    video = replace(_video("ready", hev1), codec="hevc")
    assert playback_state(video)["hevc"] is None  # no request
    assert hevc_file(video) is None
    pending = replace(video, derivatives={"hevc": {**state, "status": "pending", "file": None,
                                                   "stream": None}})
    assert playback_state(pending)["hevc"] == {
        "status": "pending", "error_code": None, "stream": None,
        "type": 'video/mp4; codecs="hvc1.1.6.L93.B0"', "path": None}
    made = replace(video, derivatives={"hevc": {
        **state, "status": "ready", "file": "derivatives/file_1/hevc.mp4", "stream": "remux"}})
    assert playback_state(made)["hevc"]["path"] == f"/stream/{'t' * 43}/?rendition=hevc"
    assert hevc_file(made) == ("derivatives/file_1/hevc.mp4", "video/mp4")
    as_is = replace(video, derivatives={"hevc": {**state, "status": "ready", "file": None,
                                                 "stream": "original"}})
    assert hevc_file(as_is) == ("videos/file_1/clip.mp4", "video/mp4")
    skipped_row = replace(video, derivatives={"hevc": {**state, "status": "skipped",
                                                       "error_code": "not_needed"}})
    assert playback_state(skipped_row)["hevc"] is None
    assert playback_state(made)["stream"] == "original"  # /stream/ itself is unchanged
