"""The scenes of a video (derive/scenes.py), under its token:

* ``GET /api/video/{token}/scenes/`` → JSON: the scenes (``start``/``end`` s and
  ``start_frame``/``end_frame``, each range half-open; the ``transition`` that starts it:
  ``cut`` or ``gradual``, None for the first; its ``thumbnail``: the sheet's ``url``,
  ``x``, ``y``, ``w``, ``h`` px) and ``activity`` (one number a second: the mean absolute
  difference of consecutive frames, 0..255 levels);
* ``GET /api/video/{token}/scenes.vtt`` → WebVTT chapters, one cue per scene;
* ``GET /api/video/{token}/scenes/{n}.jpg`` → thumbnail sheet ``n`` (from 0).

Not ready → 409 with its state; an unknown, revoked or expired token → the same 404 as
every token endpoint (api/derivatives/endpoints.py)."""

from __future__ import annotations

from typing import Any

import falcon

from api.derivatives.endpoints import DerivativeSheet, DerivativeView, DerivativeVTT, vtt_time
from videodrop.derivatives import unpack_activity


def sheet_url(base: str, token: str, sheet: int) -> str:
    return f"{base}/api/video/{token}/scenes/{sheet}.jpg"


def scenes_view(data: dict[str, Any], base: str, token: str) -> dict[str, Any]:
    """The scenes' JSON from the row's ``data`` (derive/scenes.py)."""
    rate, frames = data["rate"], data["frames"]
    starts: list[int] = data["starts"]
    w, h, columns, rows = data["width"], data["height"], data["columns"], data["rows"]
    per_sheet = columns * rows
    sheets = [sheet_url(base, token, i) for i in range(len(data["sheets"]))]
    # the last scene ends with the video (the record's duration: the sound may outlast
    # the picture), not with its last analysed frame
    last_end = data.get("duration") or frames / rate
    found = []
    for i, first in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else frames
        cell = i % per_sheet
        found.append({
            "index": i, "start": round(first / rate, 3),
            "end": round(end / rate if i + 1 < len(starts) else last_end, 3),
            "start_frame": first, "end_frame": end,
            "transition": data["transitions"][i - 1] if i else None,
            "thumbnail": {"url": sheets[min(i // per_sheet, len(sheets) - 1)],
                          "x": (cell % columns) * w, "y": (cell // columns) * h,
                          "w": w, "h": h}})
    return {"scenes": found, "count": len(found), "rate": rate, "frames": frames,
            "duration": data["duration"], "activity": unpack_activity(data["activity"]),
            "sheets": sheets, "vtt_url": f"{base}/api/video/{token}/scenes.vtt"}


def scenes_vtt(view: dict[str, Any]) -> str:
    """WebVTT chapters: one cue per scene, titled ``Scene n`` (from 1)."""
    cues = ["WEBVTT", ""]
    for scene in view["scenes"]:
        if scene["end"] > scene["start"]:
            cues += [f"{vtt_time(scene['start'])} --> {vtt_time(scene['end'])}",
                     f"Scene {scene['index'] + 1}", ""]
    return "\n".join(cues)


class Scenes(DerivativeView):
    kind = "scenes"
    view = scenes_view


class ScenesVTT(DerivativeVTT):
    kind = "scenes"
    view = scenes_view
    vtt = scenes_vtt


class ScenesSheet(DerivativeSheet):
    kind = "scenes"
    sheets_are = "The scenes have thumbnail sheets"


def add_routes(app: falcon.App, make: Any) -> None:
    """The routes above; ``make(cls)`` builds a resource with its collaborators."""
    app.add_route("/api/video/{token}/scenes/", make(Scenes))
    app.add_route("/api/video/{token}/scenes.vtt", make(ScenesVTT))
    app.add_route("/api/video/{token}/scenes/{sheet}.jpg", make(ScenesSheet))
