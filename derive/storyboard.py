"""The storyboard: small pictures of the video at regular times (hover previews on a seek
bar), as tiles of sprite sheets.

The video is cut in ``n`` equal slots (:func:`plan`: :data:`SHORT_TILES` under
:data:`LONG_VIDEO` seconds, :data:`LONG_TILES` above, at most one a second); each tile is
the first frame of its slot. One ffmpeg pass decodes keyframes only (``-skip_frame
nokey``), keeps the first of each slot (``select``), shrinks it to :data:`TILE_WIDTH` px
wide (rotation and sample aspect ratio applied; never larger than the picture: a small
video's tiles are its own size), logs its time (``showinfo``) and lays the tiles out up
to :data:`COLUMNS` to a row (``tile``; fewer when fewer tiles are wanted) in JPEG sheets;
the same frames, shrunk to the poster's measure, go to a pipe: the poster's candidates
(derive/poster.py). When keyframes are too sparse for the slots (fewer than
:data:`MIN_COVERAGE` of them get a tile) or the keyframe pass fails, the pass runs again
decoding every frame. What was covered is recorded: ``wanted`` slots, ``tiles`` made,
``decode`` (keyframes | full); each tile runs from its time to the next tile's (the last
to the end of the video)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derive import jpeg, poster
from derive.ffmpeg import VIDEO_ONLY, Failed, FFmpeg, FullDecode, Skipped, input_args
from derive.source import Source
from videodrop.derivatives import Reason

SHORT_TILES, LONG_TILES = 50, 100
LONG_VIDEO = 900.0  # seconds: 15 minutes
MIN_SLOT = 1.0  # seconds: no more than one tile a second
COLUMNS, MAX_ROWS = 10, 10  # a sheet holds up to 100 tiles
TILE_WIDTH = 240  # px, landscape; portrait tiles are TILE_WIDTH high
MIN_COVERAGE = 0.9
QUALITY = 5  # ffmpeg's -q:v for mjpeg
SHEET = "storyboard-{:02d}.jpg"


@dataclass(frozen=True)
class Plan:
    tiles: int  # slots wanted
    slot: float  # seconds each
    rows: int  # of a sheet
    columns: int  # of a sheet: COLUMNS, or fewer when fewer tiles are wanted


def plan(duration: float) -> Plan:
    wanted = SHORT_TILES if duration < LONG_VIDEO else LONG_TILES
    tiles = max(1, min(wanted, math.floor(duration / MIN_SLOT)))
    columns = min(COLUMNS, tiles)
    rows = min(MAX_ROWS, math.ceil(tiles / columns))
    return Plan(tiles, duration / tiles, rows, columns)


def _tile_scale(landscape: bool) -> str:
    """The filters making a tile: :data:`TILE_WIDTH` px on the side that is the long one
    for the probe (``landscape``: the width), or the picture's own size when smaller."""
    size = (f"w='min({TILE_WIDTH},iw)':h=-2" if landscape
            else f"w=-2:h='min({TILE_WIDTH},ih)'")
    return f"scale=w='trunc(iw*sar/2)*2':h='trunc(ih/2)*2',setsar=1,scale={size}"


def run_pass(ffmpeg: FFmpeg, path: Path | Source, the_plan: Plan, out: Path, *, keyframes: bool,
             landscape: bool) -> tuple[list[float], list[Path], list[poster.Candidate]]:
    """One pass: the tiles' times (s), the sheets written in ``out`` and each tile's
    frame measured as a poster candidate (derive/poster.py). Decoding every frame, its
    deadline grows with the plan's seconds."""
    slot = the_plan.slot
    select = (f"select='isnan(prev_selected_t)"
              f"+gt(floor(t/{slot:.6f}),floor(prev_selected_t/{slot:.6f}))'")
    # showinfo after the shrinking: its checksum of each frame costs little there
    frames = ffmpeg.frames([
        *input_args(path, keyframes=keyframes),
        "-vf", f"{select},{_tile_scale(landscape)},showinfo,"
               f"tile={the_plan.columns}x{the_plan.rows},format=yuvj420p",
        "-fps_mode", "passthrough", "-c:v", "mjpeg", "-q:v", str(QUALITY),
        "-f", "image2", "-start_number", "0", "-y", f"file:{out}/sheet-%02d.jpg",
        *VIDEO_ONLY, "-vf", f"{select},{poster.MEASURE},format=gray",
        "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"],
        poster.PROBE_W * poster.PROBE_H,
        full=None if keyframes else FullDecode(path, the_plan.tiles * the_plan.slot))
    sheets = sorted(out.glob("sheet-*.jpg"))
    measured = [poster.measure(t, f) for t, f in zip(frames.times, frames.data, strict=True)]
    return frames.times, sheets, measured


def make(ffmpeg: FFmpeg, path: Path | Source, duration: float | None, landscape: bool, out: Path,
         *, seen: list[poster.Candidate] | None = None) -> tuple[dict[str, Any], list[Path]]:
    """Sheets in ``out`` and the facts (``tiles``: start, end s, sheet index, x, y; tile
    ``width``/``height`` px; ``wanted``, ``slot`` s, ``decode``). ``seen``, when given,
    gets the keyframes of the tiles measured as poster candidates (none when the tiles
    come from the full decode). :class:`Skipped` for a video without a duration or
    without a decodable frame; :class:`Failed` when ffmpeg fails on every frame too."""
    if not duration or duration <= 0:
        raise Skipped(Reason.TOO_SHORT, "the video has no duration to lay a storyboard over")
    the_plan = plan(duration)
    decode = "keyframes"
    try:
        times, sheets, measured = run_pass(ffmpeg, path, the_plan, out, keyframes=True,
                                           landscape=landscape)
    except Failed:
        times, sheets, measured = [], [], []
    if len(times) < MIN_COVERAGE * the_plan.tiles or not sheets:
        for old in out.iterdir():
            old.unlink()
        decode = "full"
        times, sheets, _ = run_pass(ffmpeg, path, the_plan, out, keyframes=False,
                                    landscape=landscape)
    elif seen is not None:
        seen.extend(measured)
    if not times or not sheets:
        raise Skipped(Reason.NO_VIDEO_FRAMES, "no video frame decodes")
    columns = the_plan.columns
    per_sheet = columns * the_plan.rows
    times = times[:per_sheet * len(sheets)]
    sheet_w, sheet_h = jpeg.size_of(sheets[0])
    width, height = sheet_w // columns, sheet_h // the_plan.rows
    tiles = []
    for i, start in enumerate(times):
        end = times[i + 1] if i + 1 < len(times) else max(duration, start)
        cell = i % per_sheet
        tiles.append({"start": round(start, 3), "end": round(end, 3), "sheet": i // per_sheet,
                      "x": (cell % columns) * width, "y": (cell // columns) * height})
    facts = {"tiles": tiles, "width": width, "height": height, "columns": columns,
             "rows": the_plan.rows, "wanted": the_plan.tiles, "slot": round(the_plan.slot, 3),
             "decode": decode, "duration": duration}
    return facts, sheets
