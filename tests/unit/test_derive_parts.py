"""The derive role's parts that need no service: its settings, message, plans, measures,
the JPEG header reader, the storyboard's WebVTT and the record's new keys."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.derivatives.endpoints import state_sentence, storyboard_view, storyboard_vtt
from derive import jpeg, poster, storyboard
from derive.ffmpeg import turn
from videodrop import records
from videodrop.catalog import Video
from videodrop.derivatives import KINDS, parse_kinds
from videodrop.messages import BadMessage, DeriveVideo, ProbeVideo, decode, encode, routing_key
from videodrop.settings import Settings, SettingsError

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_derive_setting_names_kinds_and_empty_turns_the_role_off():
    assert Settings.from_env({}).derive == KINDS
    assert Settings.from_env({"VIDEODROP_DERIVE": ""}).derive == ()
    assert Settings.from_env({"VIDEODROP_DERIVE": "none"}).derive == ()
    assert Settings.from_env({}).derive == ("packets", "poster", "storyboard", "scenes",
                                            "rendition", "hevc")
    assert Settings.from_env({"VIDEODROP_DERIVE": " Storyboard,poster "}).derive == (
        "poster", "storyboard")
    with pytest.raises(SettingsError, match=r"VIDEODROP_DERIVE=.*unknown kind\(s\) gifs"):
        Settings.from_env({"VIDEODROP_DERIVE": "poster,gifs"})
    assert parse_kinds("poster") == ("poster",)


def test_derive_concurrency_and_timeout_are_checked():
    assert Settings.from_env({}).derive_concurrency == 1
    with pytest.raises(SettingsError, match="VIDEODROP_DERIVE_CONCURRENCY"):
        Settings.from_env({"VIDEODROP_DERIVE_CONCURRENCY": "0"})
    with pytest.raises(SettingsError, match="VIDEODROP_DERIVE_TIMEOUT"):
        Settings.from_env({"VIDEODROP_DERIVE_TIMEOUT": "0"})
    assert Settings.from_env({}).derive_timeout_per_media_second == 0.5
    assert Settings.from_env({"VIDEODROP_DERIVE_TIMEOUT_PER_MEDIA_SECOND": "0"}
                             ).derive_timeout_per_media_second == 0
    for wrong in ("-1", "nan", "inf", "fast"):
        with pytest.raises(SettingsError, match="VIDEODROP_DERIVE_TIMEOUT_PER_MEDIA_SECOND"):
            Settings.from_env({"VIDEODROP_DERIVE_TIMEOUT_PER_MEDIA_SECOND": wrong})
    settings = Settings.from_env({"VIDEODROP_AMQP_PREFIX": "t1"})
    assert (settings.derive_queue, settings.derive_dead_queue) == ("t1.derive", "t1.derive.dead")


def test_derive_message_round_trip_and_routing():
    msg = DeriveVideo(video_id=7, kinds=("poster",))
    assert decode(encode(msg)) == msg
    assert routing_key(msg) == "derive" and routing_key(ProbeVideo(1)) == "probe"
    with pytest.raises(BadMessage, match="kinds"):
        decode(b'{"v":1,"kind":"derive","video_id":1,"kinds":"poster"}')


def test_storyboard_plans_fifty_tiles_short_a_hundred_long_and_one_a_second_at_most():
    assert storyboard.plan(600).tiles == 50 and storyboard.plan(600).rows == 5
    assert storyboard.plan(3600).tiles == 100 and storyboard.plan(3600).rows == 10
    assert storyboard.plan(899.9).tiles == 50
    short = storyboard.plan(12.5)
    assert short.tiles == 12 and short.rows == 2
    assert short.slot == pytest.approx(12.5 / 12)
    assert storyboard.plan(0.4).tiles == 1


def test_poster_measures_reject_black_white_and_flat_frames():
    black = poster.measure(0, bytes(576))
    white = poster.measure(1, bytes([250]) * 576)
    flat_grey = poster.measure(2, bytes([128]) * 576)
    dim = poster.measure(3, bytes([30, 50] * 288))  # a fade-in: little contrast
    picture = poster.measure(4, bytes(range(0, 256, 4)) * 9)
    assert not black.usable and not white.usable and not flat_grey.usable
    assert dim.usable and picture.usable
    assert poster.choose([black, dim, picture, white]) == picture
    assert poster.choose([black, white]) is None


def test_poster_window_of_long_videos_starts_a_tenth_in():
    assert poster.window(None) == (0.0, None)
    assert poster.window(60) == (0.0, None)
    assert poster.window(3600) == (360.0, poster.WINDOW)
    assert poster.window(130) == (10.0, poster.WINDOW)


@pytest.mark.parametrize(("degrees", "filters"), [
    (-90.0, [("transpose", "clock")]), (90.0, [("transpose", "cclock")]),
    (-270.0, [("transpose", "cclock")]), (180.0, [("hflip", ""), ("vflip", "")]),
    (-180.0, [("hflip", ""), ("vflip", "")]), (-0.0, []),
    (-30.0, [("rotate", "30.000000*PI/180")])])
def test_the_turn_is_what_ffmpegs_autorotation_inserts(degrees: float,
                                                       filters: list[tuple[str, str]]):
    """A display matrix's rotation (degrees, as ffprobe and PyAV give it) turned into
    fftools' filters (ffmpeg 5.1)."""
    assert turn(degrees) == filters


def test_jpeg_size_reads_the_frame_header(tmp_path: Path):
    out = tmp_path / "a.jpg"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x176",
                    "-frames:v", "1", "-f", "mjpeg", str(out)], check=True, timeout=60)
    assert jpeg.size_of(out) == (320, 176)
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="not a JPEG"):
        jpeg.size_of(bad)


DATA = {"tiles": [{"start": 0.0, "end": 2.0, "sheet": 0, "x": 0, "y": 0},
                  {"start": 2.0, "end": 3661.5, "sheet": 0, "x": 240, "y": 0}],
        "width": 240, "height": 135, "columns": 10, "rows": 1, "wanted": 2, "slot": 2.0,
        "decode": "keyframes", "duration": 3661.5,
        "sheets": ["derivatives/s1/storyboard-00.jpg"]}


def test_storyboard_json_and_webvtt():
    view = storyboard_view(DATA, "http://h", "TOK")
    assert view["tiles"][1] == {"start": 2.0, "end": 3661.5,
                                "url": "http://h/api/video/TOK/storyboard/0.jpg",
                                "x": 240, "y": 0, "w": 240, "h": 135}
    assert view["vtt_url"] == "http://h/api/video/TOK/storyboard.vtt"
    assert storyboard_vtt(view).splitlines() == [
        "WEBVTT", "",
        "00:00:00.000 --> 00:00:02.000",
        "http://h/api/video/TOK/storyboard/0.jpg#xywh=0,0,240,135", "",
        "00:00:02.000 --> 01:01:01.500",
        "http://h/api/video/TOK/storyboard/0.jpg#xywh=240,0,240,135"]


def test_record_keeps_the_seed_links_first_and_adds_derivatives():
    video = Video(
        id=1, source_id="s1", name="n", description="", status="ready", access_token="T",
        token_expires_at=None, original_filename="a.mp4", origin="upload", origin_path=None,
        stored_path="videos/s1/a.mp4", size=1, sha256=None, format="mp4", duration=1.0,
        resolution="2x2", fps=1.0, codec="h264", audio_codec=None, metadata={},
        processing_started_at=NOW, processing_completed_at=NOW, processing_error=None,
        error_code=None, attempts=1, claim_dev=None, claim_ino=None, claim_size=None,
        claim_mtime_ns=None, claim_ctime_ns=None, created_at=NOW, updated_at=NOW,
        derivatives={"poster": {"status": "ready", "error": None, "error_code": None}})
    rec = records.record(video, "http://h")
    assert list(rec["api_links"])[:5] == ["api_endpoint", "stream_url", "access_token",
                                          "metadata_url", "download_url"]
    assert rec["api_links"]["poster_url"] == "http://h/api/video/T/poster/"
    assert rec["api_links"]["storyboard_url"] == "http://h/api/video/T/storyboard/"
    assert rec["derivatives"] == {"poster": {"status": "ready", "error": None,
                                             "error_code": None}}
    assert records.metadata(video)["derivatives"] == rec["derivatives"]
    assert set(records.api_links(None, "http://h").values()) == {None}


def test_the_409_sentence_reads_for_every_state_and_kind():
    assert state_sentence("poster", "pending") == "The poster is not made yet (pending)."
    assert state_sentence("scenes", "pending") == "The scenes are not made yet (pending)."
    assert (state_sentence("poster", "failed", ": ffmpeg exited 1")
            == "Making the poster failed: ffmpeg exited 1.")
    assert (state_sentence("scenes", "skipped", ": no picture")
            == "The scenes were not made: no picture.")
    assert (state_sentence("storyboard", "skipped", ": too short")
            == "The storyboard was not made: too short.")


def test_a_derivative_s_version_is_its_make_time_in_microseconds():
    """The version the pages put in a poster's URL (``?v=``): microseconds since 1970 UTC
    of the row's ``completed_at`` (PostgreSQL keeps microseconds: exact), whatever the
    time zone it comes in; None before the first make."""
    from datetime import UTC, datetime, timedelta, timezone

    from videodrop.derivatives import version_of

    assert version_of(None) is None
    assert version_of(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005
    made = datetime(2026, 12, 1, 18, 45, 3, 123456, tzinfo=UTC)
    assert version_of(made) == 1796150703123456
    assert version_of(made.astimezone(timezone(timedelta(hours=-5)))) == version_of(made)
