"""What the derive role made, under the video's token (the capability, as for the file):

* ``GET /api/video/{token}/poster/[?v=<version>]`` → ``image/jpeg`` (ETag, Last-Modified;
  a private cache revalidated on every use: If-None-Match answers 304; with ``v`` the
  poster's current version, what the pages ask, a private cache of a year, immutable);
* ``GET /api/video/{token}/storyboard/`` → JSON: the tiles (``start``/``end`` s, the
  sheet's ``url``, ``x``, ``y``, ``w``, ``h`` px) and what was covered;
* ``GET /api/video/{token}/storyboard.vtt`` → WebVTT cues pointing at ``sheet#xywh=``;
* ``GET /api/video/{token}/storyboard/{n}.jpg`` → sheet ``n`` (from 0).

A derivative that is not ready answers 409 with its state and reason in a sentence
(pending ones with ``Retry-After``), as the file endpoints do for a video that is not
ready (a ready one being remade is served as it is); an unknown,
revoked or expired token answers the same 404 as every token endpoint. Paths of files come
from the catalog's rows, never from the request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import falcon

from api.tokens.endpoints import TokenResource, gone
from videodrop.catalog import Derivative, Video
from videodrop.derivatives import version_of

#: The URLs are fixed and a remake replaces their files: a browser asks each time whether
#: its copy is still good (If-None-Match, a 304 when it is), so it never shows an old poster
#: or old sprites under a new storyboard's coordinates, and a revoked token's images are
#: no longer shown from the cache.
CACHE_CONTROL = "private, no-cache"
#: The poster asked with ``?v=`` its current version (the pages' URL): that URL names
#: one make, so the browser keeps it a year without asking (a remake gives a new URL).
VERSIONED_CACHE_CONTROL = "private, max-age=31536000, immutable"
RETRY_PENDING = "10"  # seconds: Retry-After of a pending derivative


def not_made(kind: str, video: Video, found: Derivative | None) -> falcon.HTTPConflict:
    """409, as the file endpoints answer for a video that is not ready: the state (and
    the reason) of the derivative, or of the video before any was requested."""
    be = "are" if kind.endswith("s") else "is"  # the scenes are pending
    if found is None:
        state = ("not requested (VIDEODROP_DERIVE leaves it out)" if video.status == "ready"
                 else f"not requested yet (the video is {video.status})")
        return falcon.HTTPConflict(title=f"No {kind}", description=f"The {kind} {be} {state}.",
                                   headers={"Retry-After": RETRY_PENDING}
                                   if video.status in {"uploading", "processing"} else None)
    why = f": {found.error}" if found.error else ""
    headers = {"Retry-After": RETRY_PENDING} if found.status == "pending" else None
    return falcon.HTTPConflict(title=f"No {kind}",
                               description=state_sentence(kind, found.status, why),
                               headers=headers)


def state_sentence(kind: str, status: str, why: str = "") -> str:
    """Why there is no ``kind`` to serve, in a sentence for people: ``status`` (pending,
    failed or skipped) and ``why`` (``": <the row's error>"`` or ``""``)."""
    plural = kind.endswith("s")  # the scenes
    be, was = ("are", "were") if plural else ("is", "was")
    if status == "pending":
        return f"The {kind} {be} not made yet (pending){why}."
    if status == "failed":
        return f"Making the {kind} failed{why}."
    if status == "skipped":
        return f"The {kind} {was} not made{why}."
    return f"The {kind} {be} {status}{why}."


class DerivativeResource(TokenResource):
    kind: str

    def ready(self, token: str) -> tuple[Video, Derivative]:
        """The video and its ready derivative of :attr:`kind`; 409 otherwise."""
        video = self.lookup(token).video
        if video.status == "expired":
            raise gone(video)
        found = self.catalog.derivative(video.id, self.kind)
        if found is None or found.status != "ready":
            raise not_made(self.kind, video, found)
        return video, found

    def send_image(self, req: falcon.Request, resp: falcon.Response, video: Video,
                   relative: str, name: str, *, cache_control: str = CACHE_CONTROL) -> None:
        try:
            # through the API on s3 too: a presigned URL changes each minute, so a browser
            # could neither keep a versioned poster nor revalidate an image (small files)
            self.send(req, resp, relative, content_type="image/jpeg", disposition="inline",
                      filename=f"{video.source_id}-{name}", cache_control=cache_control,
                      proxy=True)
        except falcon.HTTPNotFound as exc:
            raise falcon.HTTPNotFound(
                title="File missing",
                description=f"The {self.kind} file is missing; tell an operator.") from exc


class Poster(DerivativeResource):
    kind = "poster"

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        video, found = self.ready(token)
        current = req.get_param("v") == str(version_of(found.completed_at))
        self.send_image(req, resp, video, found.data["file"], "poster.jpg",
                        cache_control=VERSIONED_CACHE_CONTROL if current else CACHE_CONTROL)

    on_head = on_get


#: A derivative's JSON view: (its row's ``data``, the base URL, the token) → the JSON.
View = Callable[[dict[str, Any], str, str], dict[str, Any]]


class DerivativeView(DerivativeResource):
    """``GET`` → the JSON :attr:`view` makes of the ready derivative."""

    view: ClassVar[View]

    def view_of(self, token: str) -> dict[str, Any]:
        _video, found = self.ready(token)
        return type(self).view(found.data, self.settings.base_url.rstrip("/"), token)

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        resp.media = self.view_of(token)

    on_head = on_get


class DerivativeVTT(DerivativeView):
    """``GET`` → WebVTT: :attr:`vtt` of the JSON view."""

    vtt: ClassVar[Callable[[dict[str, Any]], str]]

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        resp.content_type = "text/vtt; charset=utf-8"
        resp.text = type(self).vtt(self.view_of(token))

    on_head = on_get


class DerivativeSheet(DerivativeResource):
    """``GET …/{sheet}.jpg`` → image ``sheet`` (from 0) of the derivative's ``sheets``;
    404 naming the range for any other."""

    sheets_are: str  # how the 404 names them: "The storyboard has sheets"

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str,
               sheet: str) -> None:
        video, found = self.ready(token)
        sheets: list[str] = found.data["sheets"]
        if not sheet.isdigit() or int(sheet) >= len(sheets):
            raise falcon.HTTPNotFound(
                title="Not found",
                description=f"{self.sheets_are} 0 to {len(sheets) - 1}.")
        self.send_image(req, resp, video, sheets[int(sheet)], f"{self.kind}-{sheet}.jpg")

    on_head = on_get


def sheet_url(base: str, token: str, sheet: int) -> str:
    return f"{base}/api/video/{token}/storyboard/{sheet}.jpg"


def storyboard_view(data: dict[str, Any], base: str, token: str) -> dict[str, Any]:
    """The storyboard's JSON from its row's ``data`` (derive/storyboard.py)."""
    w, h = data["width"], data["height"]
    sheets = [sheet_url(base, token, i) for i in range(len(data["sheets"]))]
    return {
        "tiles": [{"start": t["start"], "end": t["end"], "url": sheets[t["sheet"]],
                   "x": t["x"], "y": t["y"], "w": w, "h": h} for t in data["tiles"]],
        "sheets": sheets, "tile_width": w, "tile_height": h,
        "columns": data["columns"], "rows": data["rows"],
        "wanted": data["wanted"], "decode": data["decode"], "duration": data["duration"],
        "vtt_url": f"{base}/api/video/{token}/storyboard.vtt",
    }


def vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def storyboard_vtt(view: dict[str, Any]) -> str:
    """WebVTT: one cue per tile, its text the sheet's URL with a ``#xywh=`` fragment."""
    cues = ["WEBVTT", ""]
    for tile in view["tiles"]:
        if tile["end"] <= tile["start"]:
            continue
        cues += [f"{vtt_time(tile['start'])} --> {vtt_time(tile['end'])}",
                 f"{tile['url']}#xywh={tile['x']},{tile['y']},{tile['w']},{tile['h']}", ""]
    return "\n".join(cues)


class Storyboard(DerivativeView):
    kind = "storyboard"
    view = storyboard_view


class StoryboardVTT(DerivativeVTT):
    kind = "storyboard"
    view = storyboard_view
    vtt = storyboard_vtt


class StoryboardSheet(DerivativeSheet):
    kind = "storyboard"
    sheets_are = "The storyboard has sheets"


def add_routes(app: falcon.App, make: Any) -> None:
    """The routes above; ``make(cls)`` builds a resource with its collaborators."""
    app.add_route("/api/video/{token}/poster/", make(Poster))
    app.add_route("/api/video/{token}/storyboard/", make(Storyboard))
    app.add_route("/api/video/{token}/storyboard.vtt", make(StoryboardVTT))
    app.add_route("/api/video/{token}/storyboard/{sheet}.jpg", make(StoryboardSheet))
