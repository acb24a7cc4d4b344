"""Management endpoints (admin bearer token): the list, and the collection's POST (upload).

``GET /api/videos`` pages in the order of ``sort`` (``-added``, newest first, unless given;
``added``, ``name``, ``-name``, ``duration``, ``-duration``, ``size``, ``-size``) with an
opaque keyset ``cursor``; ``status``, ``origin`` (a folder and everything under it),
``source_id`` (exact), ``q`` (a substring of name, file name, source_id or origin, any
case), ``created_after`` and ``created_before`` filter; any other parameter is a 400 naming
these. A page of each sort is an index range scan however deep it is, ``q`` a trigram index
lookup (videodrop/catalog/lists.py); ``origin`` with a sort other than the added order reads
the folder's rows and sorts them."""

from __future__ import annotations

from urllib.parse import urlencode

import falcon

from api.auth.credential import AdminAuth, admin_only
from api.http.params import (
    bad,
    decode_cursor,
    encode_cursor,
    parse_int,
    parse_sort,
    parse_when,
    query_params,
    repeated_params,
    text,
)
from api.uploads.receive import Upload
from videodrop import records
from videodrop.catalog import STATUSES, Catalog, VideoFilter
from videodrop.settings import Settings

MAX_LIMIT = 1000
LIST_PARAMS = ("limit", "cursor", "sort", "status", "origin", "source_id", "q",
               "created_after", "created_before")


@admin_only
class VideoList:
    """``GET /api/videos`` (the module docstring); ``POST`` is :class:`Upload`'s."""

    def __init__(self, settings: Settings, catalog: Catalog, admin: AdminAuth,
                 upload: Upload) -> None:
        self.settings = settings
        self.catalog = catalog
        self.admin = admin
        self.upload = upload

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = query_params(req)
        twice = repeated_params(req)
        if twice:
            raise bad("parameter", f"each parameter at most once: {', '.join(twice)} given"
                                   " more than once")
        unknown = sorted(set(query) - set(LIST_PARAMS))
        if unknown:
            raise bad("parameter", f"unknown parameter {', '.join(unknown)}; the list takes "
                                   f"{', '.join(LIST_PARAMS)}")
        limit = parse_int(query.get("limit", "50"), "limit", low=1, high=MAX_LIMIT)
        status = query.get("status")
        if status is not None and status not in STATUSES:
            raise bad("status", f"status is one of {', '.join(STATUSES)}")
        origin = query.get("origin")
        if origin is not None:
            origin = origin.rstrip("/")
            if not 1 <= len(origin) <= 1024:
                raise bad("origin", "origin is a folder, e.g. upload, inbox, inbox/cam1")
            origin = text(origin)
        source_id, search = query.get("source_id"), query.get("q")
        for name, value in (("source_id", source_id), ("q", search)):
            if value is not None and not 1 <= len(value) <= 1024:
                raise bad(name, f"{name} is 1 to 1024 characters")
        sort = parse_sort(query.get("sort"))
        cursor = decode_cursor(query["cursor"], sort) if "cursor" in query else None
        after, before = query.get("created_after"), query.get("created_before")
        filters = VideoFilter(
            status=status, origin=origin,
            source_id=None if source_id is None else text(source_id),
            search=None if search is None else text(search),
            created_after=None if after is None else parse_when(after, "created_after"),
            created_before=None if before is None else parse_when(before, "created_before"))
        videos = self.catalog.list_page(filters, limit=limit + 1, sort=sort, after=cursor)
        nxt = None
        if len(videos) > limit:
            videos = videos[:limit]
            query["cursor"] = encode_cursor(sort.key_of(videos[-1]), sort)
            nxt = self.settings.link(f"/api/videos?{urlencode(query)}")
        resp.media = {"items": [records.record(v, self.settings.base_url) for v in videos],
                      "next": nxt}

    on_head = on_get

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.upload.on_post(req, resp)
