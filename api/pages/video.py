"""One video's page (``GET /videos/{id}``) and its live state (``GET /videos/{id}/live.json``),
which the page polls while something of the video is still on its way (api/pages/static/
video.js): its derivatives (poster, storyboard, scenes) and the rendition a browser can play
(docs/playback.md, "What a user sees").

The rendition's state comes from the record: ``playback`` (``playable``, ``reasons``,
``stream``, ``status``, ``progress``, ``error_code``) and, for what it does not say,
``derivatives["rendition"]`` (:func:`playback_view`). Until the rendition kind exists the
record has neither ``status`` nor ``derivatives["rendition"]`` and the page says nothing of
renditions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from videodrop import media, records
from videodrop.catalog import Catalog, Video

if TYPE_CHECKING:
    from api.pages.site import Site

#: Fields of the rendition's state the page reads (:func:`playback_view`).
RENDITION_FIELDS = ("status", "error", "error_code", "progress")


def playback_view(record: dict[str, Any]) -> dict[str, Any]:
    """The record's ``playback`` (``{}`` before the video is ready) with the rendition's
    ``status``, ``error``, ``error_code`` and ``progress`` (0..1 or None) filled in from
    ``derivatives["rendition"]`` where ``playback`` does not give them; ``stream``
    defaults to ``"original"``."""
    playback = dict(record.get("playback") or {})
    if not playback:
        return {}
    rendition = (record.get("derivatives") or {}).get("rendition") or {}
    for field in RENDITION_FIELDS:
        if playback.get(field) is None and rendition.get(field) is not None:
            playback[field] = rendition[field]
    playback.setdefault("stream", "original")
    return playback


def player_src(video: Video, playback: dict[str, Any]) -> str | None:
    """The player's ``src``: ``/stream/{token}/``, with ``?v={stream}`` once ``/stream/``
    serves a rendition, so that a browser never mixes bytes of the original it cached
    (``max-age=3600``) with the rendition's under one URL."""
    if not video.access_token:
        return None
    stream = playback.get("stream") or "original"
    path = f"/stream/{video.access_token}/"
    return path if stream == "original" else f"{path}?v={stream}"


def pending(video: Video, playback: dict[str, Any]) -> bool:
    """Whether the page should keep watching: the video is still uploading or processing,
    a derivative is being made or remade, or the rendition is."""
    if video.status in ("uploading", "processing"):
        return True
    states = video.derivatives.values()
    return (any(s.get("status") == "pending" or s.get("remaking") for s in states)
            or playback.get("status") == "pending" or hevc_first(playback))


def hevc_first(playback: dict[str, Any]) -> bool:
    """Whether the page offers an HEVC rendition first, ready or on its way (pending: the
    derive job copies it at once, but the page of a video just made ready opens before),
    while the rendition every browser plays is not made yet (pending, or waiting for a
    viewer: ``on_view``): the page does not ask for it (a browser that decodes HEVC never
    needs it); a browser that does not asks by reading ``/stream/``
    (api/tokens/endpoints.py), and the page keeps watching for it."""
    hevc = playback.get("hevc") or {}
    return hevc.get("status") in ("pending", "ready") and not_made_yet(playback)


def not_made_yet(playback: dict[str, Any]) -> bool:
    """Whether the rendition every browser plays is still to make: pending (not planned
    yet), or skipped until someone watches (``on_view``)."""
    return playback.get("status") == "pending" or (
        playback.get("status") == "skipped" and playback.get("error_code") == "on_view")


def ask_for_rendition(catalog: Catalog, video: Video, playback: dict[str, Any]) -> Video:
    """Someone opened the page of a video whose transcode waits for a viewer
    (``VIDEODROP_TRANSCODE=on-view``: rendition ``skipped``/``on_view``), or whose
    rendition is still pending (its job, when it plans it, then transcodes it rather than
    wait for a viewer): ask for it, and return the video as it is now (its rendition
    ``pending``). Any other video unchanged, and one offering an HEVC rendition
    (:func:`hevc_first`)."""
    if hevc_first(playback):  # asked for by /stream/ if the browser does not decode HEVC
        return video
    if not not_made_yet(playback):
        return video
    catalog.want_rendition(video.id)
    return catalog.by_id(video.id) or video


def poster_path(video: Video) -> str | None:
    """The poster's path under the token once it is ready, with its version (``?v=``: the
    browser keeps that URL's image without asking again; docs/derivatives.md)."""
    poster = video.derivatives.get("poster", {})
    if poster.get("status") != "ready" or not video.access_token:
        return None
    version = poster.get("version")
    return (f"/api/video/{video.access_token}/poster/"
            + (f"?v={version}" if version is not None else ""))


def storyboard_path(video: Video) -> str | None:
    """The storyboard JSON's path under the token once it is ready (docs/derivatives.md)."""
    ready = video.derivatives.get("storyboard", {}).get("status") == "ready"
    return (f"/api/video/{video.access_token}/storyboard/"
            if ready and video.access_token else None)


class VideoPage:
    def __init__(self, site: Site) -> None:
        self.site = site

    def on_get(self, req: falcon.Request, resp: falcon.Response, video_id: int) -> None:
        self.site.session(req)  # logged in, or sent to the login page
        video = self.site.catalog.by_id(video_id)
        if video is None:
            self.site.page(req, resp, "message.html", status=falcon.HTTP_404,
                           title="No such video",
                           message="It may have been deleted.", link=("/", "Back to the library"))
            return
        base_url = self.site.settings.base_url
        video = ask_for_rendition(self.site.catalog, video,
                                  playback_view(records.record(video, base_url)))
        record = records.record(video, base_url)
        playback = playback_view(record)
        self.site.page(req, resp, "video.html", video=video, record=record,
                       md=video.metadata, snippets=snippets(video, record),
                       playback=playback, stream_path=player_src(video, playback),
                       poster_path=poster_path(video),
                       storyboard_path=storyboard_path(video),
                       watching=pending(video, playback))


class VideoLive:
    """``GET /videos/{id}/live.json``: what the video page shows that changes by itself,
    for its polling (video.js). 401 without a session, 404 for an unknown id. Shape::

        {"status": "ready", "pending": bool, "derivatives": {kind: status},
         "playback": {...} (playback_view; {} before ready), "stream_src": str | None,
         "poster_path": str | None, "storyboard_path": str | None,
         "html": {"states": <the Processing card's derivative rows>,
                  "playback": <the rendition's sentence>, "scenes": <the scenes card>}}
    """

    def __init__(self, site: Site) -> None:
        self.site = site

    def on_get(self, req: falcon.Request, resp: falcon.Response, video_id: int) -> None:
        if self.site.sessions.of(req) is None:
            raise falcon.HTTPUnauthorized(title="Logged out", description="Log in again.")
        video = self.site.catalog.by_id(video_id)
        if video is None:
            raise falcon.HTTPNotFound(title="No such video",
                                      description="It may have been deleted.")
        record = records.record(video, self.site.settings.base_url)
        playback = playback_view(record)
        env = self.site.env
        parts = env.get_template("_derivatives.html").module
        resp.cache_control = ["no-store"]
        resp.media = {
            "status": video.status,
            "pending": pending(video, playback),
            "derivatives": {k: s.get("status") for k, s in video.derivatives.items()},
            "playback": playback,
            "stream_src": player_src(video, playback),
            "poster_path": poster_path(video),
            "storyboard_path": storyboard_path(video),
            "html": {
                "states": str(parts.state_rows(video.derivatives)),  # type: ignore[attr-defined]
                "playback": str(parts.playback_sentence(  # type: ignore[attr-defined]
                    playback, record["api_links"]["download_url"])),
                "scenes": env.get_template("_scenes.html").render(video=video),
            },
        }


def snippets(video: Video, record: dict[str, Any]) -> dict[str, str] | None:
    urls = record["api_links"]
    if not urls["access_token"] or video.status != "ready":
        return None  # the file URLs answer 409 until the video is ready
    filename = media.safe_filename(video.original_filename)
    curl = (f"# the record (JSON)\ncurl -s '{urls['api_endpoint']}'\n\n"
            f"# the metadata (JSON)\ncurl -s '{urls['metadata_url']}'\n\n"
            f"# download the file\ncurl -o '{filename}' '{urls['download_url']}'\n\n"
            f"# the first MiB of the stream (HTTP Range)\n"
            f"curl -r 0-1048575 -o part.bin '{urls['stream_url']}'")
    python = ("import requests\n\n"
              f'record_url = "{urls["api_endpoint"]}"\n'
              "video = requests.get(record_url, timeout=10).json()\n"
              'metadata = requests.get(video["api_links"]["metadata_url"], timeout=10).json()\n'
              'print(video["status"], metadata["duration"], metadata["resolution"])\n\n'
              'with requests.get(video["api_links"]["download_url"], stream=True,\n'
              "                  timeout=60) as response:\n"
              "    response.raise_for_status()\n"
              f'    with open("{filename}", "wb") as f:\n'
              "        for chunk in response.iter_content(1 << 20):\n"
              "            f.write(chunk)\n")
    return {"curl": curl, "python": python}
