"""The rendition policy (derive/rendition.py plan) and its settings, on metadata written
by hand: VIDEODROP_RENDITIONS auto|off|always, VIDEODROP_TRANSCODE eager|on-view|off, the
queue each path goes to, and the settings' parsing."""

from __future__ import annotations

from typing import Any

import pytest

from derive import rendition
from derive.ffmpeg import Skipped
from videodrop.settings import Settings, SettingsError

PLAYS = {"format": "mp4", "moov_before_mdat": True,
         "video": {"index": 0, "codec": "h264", "pix_fmt": "yuv420p", "profile": "High"},
         "audio_tracks": [{"index": 1, "codec": "aac", "default": True}]}
MOOV_AT_END = {**PLAYS, "moov_before_mdat": False}
PCM = {**PLAYS, "audio_tracks": [{"index": 1, "codec": "pcm_s16le", "default": True}]}
HEVC = {**PLAYS, "video": {"index": 0, "codec": "hevc", "pix_fmt": "yuv420p",
                           "codec_tag": "hev1"}}
MKV_VP8 = {"format": "mkv", "video": {"index": 0, "codec": "vp8", "pix_fmt": "yuv420p"},
           "audio_tracks": [{"index": 1, "codec": "vorbis"}]}


def plan(meta: dict[str, Any], wanted: bool = False, **settings: Any) -> rendition.Plan:
    settings.setdefault("transcode", "eager")
    return rendition.plan(meta, Settings(**settings), wanted=wanted)


def skipped(meta: dict[str, Any], wanted: bool = False, **settings: Any) -> str:
    with pytest.raises(Skipped) as caught:
        plan(meta, wanted, **settings)
    return str(caught.value.reason)


def test_auto_makes_only_what_does_not_play():
    assert skipped(PLAYS) == "not_needed"
    assert plan(MOOV_AT_END) == rendition.Plan("remux", "mp4")
    assert plan(MKV_VP8) == rendition.Plan("remux", "webm")
    assert plan(PCM) == rendition.Plan("transcode_audio", "mp4")
    assert plan(HEVC) == rendition.Plan("transcode", "mp4")
    assert [plan(m).queue for m in (MOOV_AT_END, PCM, HEVC)] == ["derive", "derive",
                                                                 "transcode"]
    assert skipped({**PLAYS, "moov_before_mdat": None}) == "no_path"


def test_corrupt_packets_are_transcoded_not_copied():
    broken = {**MOOV_AT_END, "warnings": ["ffprobe: Packet corrupt (stream = 0, dts = 7408)."]}
    assert plan(broken) == rendition.Plan("transcode", "mp4")
    assert skipped(broken, transcode="on-view") == "on_view"
    truncated = {**MOOV_AT_END, "warnings": ["truncated: header claims 35 s; the file holds 1 s"]}
    assert plan(truncated).stream == "remux"


def test_an_avi_with_b_frames_is_transcoded_not_remuxed():
    """AVI keeps no presentation times: a copy of reordered video (B-frames) cannot give
    its frames their times; one without B-frames, or probed before ``has_b_frames`` was
    kept, is remuxed as before."""
    avi = {**PLAYS, "format": "avi", "moov_before_mdat": None}
    reordered = {**avi, "video": {**PLAYS["video"], "has_b_frames": 2}}
    assert plan(reordered) == rendition.Plan("transcode", "mp4")
    assert skipped(reordered, transcode="on-view") == "on_view"
    for meta in (avi, {**avi, "video": {**PLAYS["video"], "has_b_frames": 0}}):
        assert plan(meta) == rendition.Plan("remux", "mp4")
    # the transcode reads the AVI's own times; a copy has them generated
    assert rendition.input_options(reordered, rendition.Plan("transcode", "mp4")) == []
    assert rendition.input_options(avi, rendition.Plan("remux", "mp4")) == [
        "-fflags", "+genpts"]
    args = rendition.output_args(rendition.Plan("transcode", "mp4"), reordered, Settings())
    assert args[args.index("-vf") + 1].startswith("setpts=PTS-STARTPTS,")


def test_always_and_off():
    assert plan(PLAYS, renditions="always") == rendition.Plan("remux", "mp4")
    assert plan({**PLAYS, "format": "webm", "video": {"codec": "vp9", "pix_fmt": "yuv420p"},
                 "audio_tracks": []}, renditions="always").container == "webm"
    for meta in (PLAYS, MOOV_AT_END, HEVC):
        assert skipped(meta, renditions="off") == "renditions_off"


def test_transcode_off_and_on_view():
    assert skipped(HEVC, transcode="off") == "transcode_off"
    assert skipped(PCM, transcode="off") == "transcode_off"
    assert plan(MOOV_AT_END, transcode="off").stream == "remux"  # remuxes go on
    assert skipped(HEVC, transcode="on-view") == "on_view"
    assert skipped(PCM, transcode="on-view") == "on_view"
    assert plan(HEVC, wanted=True, transcode="on-view").stream == "transcode"


def test_output_arguments_keep_one_video_and_the_played_audio():
    meta = {**HEVC, "audio_tracks": [{"index": 1, "codec": "aac"},
                                     {"index": 2, "codec": "aac", "default": True}]}
    args = rendition.output_args(rendition.Plan("transcode", "mp4"), meta,
                                 Settings(rendition_preset="fast", rendition_crf=20))
    assert args[:4] == ["-map", "0:0", "-map", "0:2"]
    joined = " ".join(args)
    for part in ("-sn -dn", "-c:v libx264 -preset fast -crf 20 -profile:v high",
                 "-pix_fmt yuv420p", "-fps_mode passthrough", "-c:a aac",
                 "-movflags +faststart -f mp4"):
        assert part in joined
    copy = " ".join(rendition.output_args(rendition.Plan("remux", "mp4"),
                                          {**HEVC, "format": "ts"}, Settings()))
    assert "-c:v copy -tag:v hvc1" in copy and "-c:a copy -bsf:a aac_adtstoasc" in copy
    assert rendition.input_options({"format": "avi"}) == ["-fflags", "+genpts"]


def test_the_settings():
    got = Settings.from_env({"VIDEODROP_RENDITIONS": "Always", "VIDEODROP_TRANSCODE": "on-view",
                             "VIDEODROP_RENDITION_MAX_HEIGHT": "720",
                             "VIDEODROP_RENDITION_PRESET": "fast",
                             "VIDEODROP_RENDITION_CRF": "26"})
    assert (got.renditions, got.transcode, got.rendition_max_height, got.rendition_preset,
            got.rendition_crf) == ("always", "on-view", 720, "fast", 26)
    default = Settings.from_env({})
    assert (default.renditions, default.transcode, default.rendition_max_height,
            default.rendition_preset, default.rendition_crf) == ("auto", "on-view", 1080,
                                                                 "veryfast", 23)
    assert "rendition" in default.derive
    assert default.transcode_queue == "videodrop.derive.transcode"
    for name, bad in (("RENDITIONS", "sometimes"), ("TRANSCODE", "lazy"),
                      ("RENDITION_MAX_HEIGHT", "1"), ("RENDITION_PRESET", "turbo"),
                      ("RENDITION_CRF", "60"), ("RENDITION_CRF", "x")):
        with pytest.raises(SettingsError):
            Settings.from_env({f"VIDEODROP_{name}": bad})
