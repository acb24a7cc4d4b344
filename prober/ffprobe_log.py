"""ffprobe's human summary (the ``Input #0`` block of its log) as a dict shaped like its
JSON, for files whose JSON it refuses to print."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

__all__ = ["parse_log_summary"]

# --- ffprobe's human summary, for files whose JSON it refuses to print -----------------
# ffprobe may exit 1 without printing JSON when it cannot open a decoder for one stream
# (e.g. HE-AAC v2 "SBR+21" audio) although it has opened the container. Its log (at
# -v info) still holds the "Input #0" summary; the essentials are read from there.

_STREAM = re.compile(r"^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\((\w+)\))?: (\w+): (.*)$")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def parse_log_summary(log: str) -> dict[str, Any] | None:
    """The ``Input #0`` block of an ffprobe log as a dict shaped like ffprobe's JSON."""
    lines = log.splitlines()
    head = next((i for i, line in enumerate(lines) if line.startswith("Input #0, ")), None)
    if head is None:
        return None
    name = re.match(r"Input #0, (.*), from '", lines[head])
    fmt: dict[str, Any] = {"format_name": name.group(1) if name else None, "tags": {}}
    streams: list[dict[str, Any]] = []
    tags: dict[str, str] = fmt["tags"]
    in_tags = False
    for line in lines[head + 1 :]:
        if not line.startswith("  "):
            break
        stripped = line.strip()
        if stream := _STREAM.match(line):
            streams.append(_log_stream(*stream.groups()))
            tags, in_tags = streams[-1]["tags"], False
        elif duration := _DURATION.search(line):
            h, m, s = duration.groups()
            fmt["duration"] = f"{int(h) * 3600 + int(m) * 60 + float(s):.6f}"
            if rate := re.search(r"bitrate: (\d+) kb/s", line):
                fmt["bit_rate"] = str(int(rate.group(1)) * 1000)
        elif stripped.startswith("Chapter"):
            tags, in_tags = {}, False
        elif stripped in {"Metadata:", "Side data:"}:
            in_tags = stripped == "Metadata:"
        elif (rotation := re.search(r"rotation of (-?[\d.]+) degrees", line)) and streams:
            side = {"side_data_type": "Display Matrix", "rotation": float(rotation.group(1))}
            streams[-1].setdefault("side_data_list", []).append(side)
        elif in_tags and (tag := re.match(r"^\s+(\S[^:]*?)\s*: (.*)$", line)):
            tags[tag.group(1)] = tag.group(2).rstrip()
    fmt["nb_streams"] = len(streams)
    return {"format": fmt, "streams": streams, "chapters": []}


def _log_stream(index: str, lang: str | None, kind: str, rest: str) -> dict[str, Any]:
    parts = _split_top(rest)
    first = parts[0].split(" ")
    stream: dict[str, Any] = {
        "index": int(index),
        "codec_type": kind.lower(),
        "codec_name": first[0],
        "tags": {"language": lang} if lang else {},
        "disposition": {"default": int("(default)" in rest), "attached_pic": 0},
    }
    profile = re.match(r"\w+ \(([^/()]+)\)", parts[0])
    if profile:
        stream["profile"] = profile.group(1)
    if "(attached pic)" in rest:
        stream["disposition"]["attached_pic"] = 1
    for part in parts[1:]:
        size = re.match(r"(\d+)x(\d+)", part)
        if size and "width" not in stream:
            stream["width"], stream["height"] = int(size.group(1)), int(size.group(2))
            aspect = re.search(r"SAR (\d+:\d+) DAR (\d+:\d+)", part)
            if aspect:
                stream["sample_aspect_ratio"], stream["display_aspect_ratio"] = aspect.groups()
        elif m := re.match(r"([\d.]+)(k?) (fps|tbr)$", part):
            rate = Fraction(m.group(1)) * (1000 if m.group(2) else 1)
            key = "avg_frame_rate" if m.group(3) == "fps" else "r_frame_rate"
            stream[key] = f"{rate.numerator}/{rate.denominator}"
        elif m := re.match(r"(\d+) kb/s", part):
            stream["bit_rate"] = str(int(m.group(1)) * 1000)
        elif m := re.match(r"(\d+) Hz", part):
            stream["sample_rate"] = m.group(1)
        elif kind == "Audio" and re.match(r"(mono|stereo|[\d.]+(\(\w+\))?|\d+ channels)$", part):
            stream["channel_layout"] = part
            stream["channels"] = {"mono": 1, "stereo": 2}.get(part) or _layout_channels(part)
        elif kind == "Video" and "pix_fmt" not in stream and re.match(r"[a-z]\w*(\(|$)", part):
            stream["pix_fmt"] = part.split("(")[0]
    return stream


def _layout_channels(layout: str) -> int | None:
    if m := re.match(r"(\d+) channels", layout):
        return int(m.group(1))
    digits = re.findall(r"\d+", layout.split("(", maxsplit=1)[0])
    return sum(int(d) for d in digits) if digits else None


def _split_top(text: str) -> list[str]:
    """Split on ", " outside parentheses and brackets."""
    parts: list[str] = []
    depth, current = 0, ""
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0 and text[i + 1 : i + 2] == " ":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts
