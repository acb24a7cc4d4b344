"""A decoded frame through a chain of ffmpeg's filters, with PyAV (the API's frame
decoder, api/frames/decoder.py; the derive role's poster child, derive/poster_child.py):
the same filters, with the same arguments, as an ffmpeg command line's ``-vf``."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av

__all__ = ["through"]


def through(frame: Any, sar: Fraction | None, chain: list[tuple[str, str]]) -> Any:
    """``frame`` (an ``av.VideoFrame``; its ``pts`` is dropped) through the filters
    ``chain`` (name, arguments; "" for none), its pixels of aspect ratio ``sar`` (None:
    unknown, as ffmpeg's 0/1): the one frame the chain gives back."""
    graph = av.filter.Graph()
    aspect = f"{sar.numerator}/{sar.denominator}" if sar else "0/1"
    nodes = [graph.add("buffer", f"video_size={frame.width}x{frame.height}"
                                 f":pix_fmt={frame.format.name}:time_base=1/90000"
                                 f":pixel_aspect={aspect}")]
    nodes += [graph.add(name, arg) if arg else graph.add(name) for name, arg in chain]
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()
    frame.pts = None
    graph.push(frame)
    return graph.pull()
