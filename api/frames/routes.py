"""The frame and clip routes of one API worker, each kind with its own pool of slots."""

from __future__ import annotations

import threading
from typing import Any

import falcon

from api.frames.clip import Clip
from api.frames.decoders import Decoders
from api.frames.endpoints import Frame, ManyFrames
from api.frames.index import Indexes
from api.frames.packets import ByteRange, Packets
from videodrop.catalog import Catalog
from videodrop.settings import Settings
from videodrop.storage import MediaStore, from_settings


def add_routes(app: falcon.App, settings: Settings, catalog: Catalog, tokens: Any,
               media: MediaStore | None = None) -> None:
    """``/frame/`` and ``/frames/``, sharing VIDEODROP_FRAME_CONCURRENCY decode slots,
    ``/clip/`` with VIDEODROP_CLIP_CONCURRENCY slots of its own (a long cut never takes a
    frame's slot, nor a frame a cut's), and the packet index's ``/packets/`` and
    ``/range/`` (api/frames/packets.py); all share the packet indexes read, and all read
    ``media`` (default: the settings' store)."""
    slots = threading.BoundedSemaphore(settings.frame_concurrency)
    decoders = Decoders(settings.child_memory)  # this worker's decoding children
    media = media if media is not None else from_settings(settings)
    # the indexes are read where the derive role wrote them: the store
    indexes = Indexes(media, catalog)
    app.add_route("/api/video/{token}/frame/",
                  Frame(settings, catalog, tokens, slots=slots, indexes=indexes, media=media,
                        decoders=decoders))
    app.add_route("/api/video/{token}/frames/",
                  ManyFrames(settings, catalog, tokens, slots=slots, indexes=indexes,
                             media=media, decoders=decoders))
    app.add_route("/api/video/{token}/clip/", Clip(
        settings, catalog, tokens, slots=threading.BoundedSemaphore(settings.clip_concurrency),
        indexes=indexes, media=media))
    app.add_route("/api/video/{token}/packets/",
                  Packets(settings, catalog, tokens, indexes=indexes, media=media))
    app.add_route("/api/video/{token}/range/",
                  ByteRange(settings, catalog, tokens, indexes=indexes, media=media))
