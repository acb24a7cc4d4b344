"""The catalog: video rows in PostgreSQL, one :class:`Catalog` made of parts with one
purpose each.

- :mod:`~videodrop.catalog.connector`: the pool; the one place driver errors are turned
  into :class:`~videodrop.errors.CatalogUnavailable` and :class:`Duplicate`;
- :mod:`~videodrop.catalog.rows`: :class:`Video`, :class:`ProbeOutcome` (``from_row``);
- :mod:`~videodrop.catalog.lists`: the one keyset list builder (:class:`VideoFilter`,
  :class:`Sort`);
- the operations, by audience: :mod:`~videodrop.catalog.claims` (watch-folder claims),
  :mod:`~videodrop.catalog.uploads`, :mod:`~videodrop.catalog.processing` (the prober),
  :mod:`~videodrop.catalog.tokens` (management), :mod:`~videodrop.catalog.reads`,
  :mod:`~videodrop.catalog.streamlinks` (the stream-link folder),
  :mod:`~videodrop.catalog.derivatives` (the derive role's requests and outcomes),
  :mod:`~videodrop.catalog.retention` (retention's walks, expiry and holds).
  :mod:`~videodrop.catalog.timeline` (origins, timelines and their gaps).

SQL lives in ``videodrop/sql/*.sql``, one file per part."""

from __future__ import annotations

from videodrop.catalog.claims import InboxClaims
from videodrop.catalog.connector import Connector, Duplicate
from videodrop.catalog.derivatives import Derivative, Derivatives, Outcome
from videodrop.catalog.lists import SORTS, Cursor, Sort, VideoFilter
from videodrop.catalog.processing import Processing
from videodrop.catalog.reads import Reads
from videodrop.catalog.retention import Chosen, RetentionRows, Usage
from videodrop.catalog.rows import STATUSES, ProbeOutcome, Video
from videodrop.catalog.timeline import Timeline
from videodrop.catalog.tokens import TokenChanges
from videodrop.catalog.uploads import Uploads
from videodrop.errors import CatalogUnavailable, Conflict


class Catalog(InboxClaims, Uploads, Processing, TokenChanges, Reads, Derivatives,
              RetentionRows, Timeline):
    """Reads and writes video rows. Driver errors leave as :class:`CatalogUnavailable`
    (retry later) or :class:`Duplicate`/:class:`Conflict`."""


__all__ = [
    "SORTS",
    "STATUSES",
    "Bounds",
    "Catalog",
    "CatalogUnavailable",
    "Chosen",
    "Conflict",
    "Connector",
    "Cursor",
    "Derivative",
    "Duplicate",
    "Outcome",
    "ProbeOutcome",
    "Sort",
    "Usage",
    "Video",
    "VideoFilter",
]
