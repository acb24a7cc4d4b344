"""The video page's pure parts (api/pages/video.py, templates/_derivatives.html): the
rendition's state as the page reads it from the record, the sentence it says, when the
page keeps polling, and the player's URL (no services)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.pages.render import Static, environment
from api.pages.video import ask_for_rendition, pending, playback_view, player_src
from videodrop.catalog import Video

DOWNLOAD = "http://x/api/video/T/download/"
DOWNLOADS = "Download gives the original file."
MEANWHILE = f"Meanwhile the original plays here if this browser can; {DOWNLOADS}"
UNPLAYABLE = {"playable": False, "reasons": [{"code": "video_codec"}], "needs": "transcode",
              "stream": "original"}


def sentence(playback: dict[str, Any]) -> str:
    macros = environment(Static()).get_template("_derivatives.html").module
    html = str(macros.playback_sentence(playback, DOWNLOAD))  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


@pytest.mark.parametrize(("state", "said"), [
    ({"status": "pending", "progress": 0.426},
     f"Preparing a version your browser can play: 42%. {MEANWHILE}"),
    ({"status": "pending", "progress": None},
     f"Preparing a version your browser can play. {MEANWHILE}"),
    ({"status": "skipped", "error_code": "on_view"},  # opening the page asks for it
     f"Preparing a version your browser can play. {MEANWHILE}"),
    ({"status": "ready", "stream": "remux"},
     "Playing a version made for browsers (the same video and sound in another container);"
     f" {DOWNLOADS}"),
    ({"status": "failed", "error_code": "timeout", "error": "ffmpeg took over 600 s."},
     "A version your browser can play could not be made: ffmpeg took over 600 s (timeout)."
     f" {DOWNLOADS}"),
    ({"status": "skipped", "error_code": "transcode_off"},
     "This video plays in browsers only re-encoded, and re-encoding is turned off on this"
     f" server. {DOWNLOADS}"),
    ({"status": "skipped", "error_code": "renditions_off"},
     "Versions for browsers are turned off on this server, so this video may not play here."
     f" {DOWNLOADS}"),
    ({"status": "skipped", "error_code": "no_path", "error": "an unknown fact"},
     f"No version for browsers is made: an unknown fact (no_path). {DOWNLOADS}"),
])
def test_the_rendition_s_state_is_one_sentence(state: dict[str, Any], said: str) -> None:
    assert sentence({**UNPLAYABLE, **state}) == said


@pytest.mark.parametrize("playback", [
    {},  # not ready
    {**UNPLAYABLE},  # no rendition kind yet: no status
    {"playable": True, "reasons": [], "stream": "original", "status": "skipped",
     "error_code": "not_needed"},
])
def test_nothing_is_said_of_a_rendition_when_there_is_nothing_to_say(
        playback: dict[str, Any]) -> None:
    assert sentence(playback) == ""


def test_the_progress_bar_and_the_download_link() -> None:
    macros = environment(Static()).get_template("_derivatives.html").module
    html = str(macros.playback_sentence(  # type: ignore[attr-defined]
        {**UNPLAYABLE, "status": "pending", "progress": 0.5}, DOWNLOAD))
    assert '<progress class="rendition-progress" max="100"' in html and 'value="50.0"' in html
    assert f'<a href="{DOWNLOAD}" download>Download</a>' in html


def test_the_rendition_s_state_comes_from_playback_else_from_its_derivative() -> None:
    record = {"playback": {**UNPLAYABLE, "status": "pending", "progress": None},
              "derivatives": {"rendition": {"status": "pending", "progress": 0.25,
                                            "error_code": None}}}
    view = playback_view(record)
    assert view["status"] == "pending" and view["progress"] == 0.25
    assert view["stream"] == "original"
    assert playback_view({"playback": None, "derivatives": {}}) == {}


def video(**fields: Any) -> Video:
    base: dict[str, Any] = {"id": 7, "status": "ready", "access_token": "T", "derivatives": {}}
    return Video(**{**{f: None for f in Video.__dataclass_fields__}, **base, **fields})


def test_the_player_plays_a_rendition_under_a_url_of_its_own() -> None:
    assert player_src(video(), {"stream": "original"}) == "/stream/T/"
    assert player_src(video(), {}) == "/stream/T/"
    assert player_src(video(), {"stream": "transcode"}) == "/stream/T/?v=transcode"
    assert player_src(video(access_token=None), {"stream": "remux"}) is None


def test_the_page_polls_while_something_is_on_its_way() -> None:
    assert pending(video(status="processing"), {})
    assert pending(video(derivatives={"poster": {"status": "pending"}}), {})
    assert pending(video(derivatives={"poster": {"status": "ready", "remaking": True}}), {})
    assert pending(video(), {"status": "pending"})
    assert not pending(video(derivatives={"poster": {"status": "ready"},
                                          "scenes": {"status": "failed"}}), {"status": "ready"})


class Asked:
    """A catalog answering what the page asks of it (want_rendition, by_id)."""

    def __init__(self) -> None:
        self.wanted: list[int] = []

    def want_rendition(self, video_id: int) -> None:
        self.wanted.append(video_id)

    def by_id(self, video_id: int) -> Video:
        return video(derivatives={"rendition": {"status": "pending"}})


def test_opening_the_page_asks_for_an_on_view_transcode_only() -> None:
    catalog = Asked()
    waiting = {**UNPLAYABLE, "status": "skipped", "error_code": "on_view"}
    now = ask_for_rendition(catalog, video(), waiting)  # type: ignore[arg-type]
    assert catalog.wanted == [7] and now.derivatives["rendition"]["status"] == "pending"
    # pending: not planned yet; the ask marks it wanted (the catalog decides, see
    # tests/integration/test_rendition_pipeline.py)
    ask_for_rendition(catalog, video(), {**UNPLAYABLE, "status": "pending"})  # type: ignore[arg-type]
    assert catalog.wanted == [7, 7]
    for other in ({**UNPLAYABLE, "status": "ready"},
                  {**UNPLAYABLE, "status": "skipped", "error_code": "transcode_off"}):
        ask_for_rendition(catalog, video(), other)  # type: ignore[arg-type]
    assert catalog.wanted == [7, 7]


def test_opening_the_page_asks_for_no_transcode_while_an_hevc_rendition_is_offered() -> None:
    """A ready HEVC rendition, or one on its way (pending: the derive job makes it at once,
    but the page of a video just made ready opens before): the page asks for nothing (a
    browser that decodes HEVC never needs the transcode; one that does not asks by
    reading /stream/). A failed HEVC rendition offers nothing: the page asks as before."""
    catalog = Asked()
    waiting = {**UNPLAYABLE, "status": "skipped", "error_code": "on_view"}
    hevc_type = 'video/mp4; codecs="hvc1.1.6.L93.B0"'
    for state in ({"status": "ready", "path": "/stream/T/?rendition=hevc"},
                  {"status": "pending", "path": None}):
        for rendition in (waiting, {**UNPLAYABLE, "status": "pending"}):
            playback = {**rendition, "hevc": {**state, "type": hevc_type}}
            ask_for_rendition(catalog, video(), playback)  # type: ignore[arg-type]
    assert catalog.wanted == []
    failed = {"status": "failed", "error_code": "not_playable", "path": None, "type": hevc_type}
    ask_for_rendition(catalog, video(), {**waiting, "hevc": failed})  # type: ignore[arg-type]
    assert catalog.wanted == [7]
