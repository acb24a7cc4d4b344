"""Generated catalogs for retention's tests and bench: video rows of several origins over
a span of days, written in bulk (COPY), with real files of their sizes when asked."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg


@dataclass(frozen=True)
class GenRow:
    """A generated video: its id once inserted (0 before), origin, size in bytes,
    created_at, status (ready, failed, processing), held."""

    id: int
    origin: str
    size: int
    created_at: datetime
    status: str
    held: bool

    @property
    def stored_path(self) -> str:
        return f"videos/g{self.id_key}/clip.mp4"

    @property
    def id_key(self) -> str:
        return f"{self.origin.replace('/', '_')}-{self.created_at.timestamp():.6f}"


def generate(n: int, origins: list[str], now: datetime, *, span: timedelta, seed: int = 1,
             sizes: tuple[int, int] = (1, 4000), held_every: int = 37,
             failed_every: int = 23, processing_every: int = 101) -> list[GenRow]:
    """``n`` rows spread over ``span`` before ``now`` (every created_at distinct), random
    origins and sizes; every ``held_every``-th held, every ``failed_every``-th failed and
    every ``processing_every``-th still processing."""
    rnd = random.Random(seed)
    step = span / n
    out = []
    for i in range(n):
        status = ("processing" if i % processing_every == processing_every - 1 else
                  "failed" if i % failed_every == failed_every - 1 else "ready")
        out.append(GenRow(0, rnd.choice(origins), rnd.randint(*sizes),
                          now - span + step * i, status, i % held_every == held_every - 1))
    return out


def insert(db_url: str, generated: list[GenRow], media_root: Path | None = None
           ) -> list[GenRow]:
    """Insert the rows (one COPY) and return them with their ids; with ``media_root``,
    write each one's file of its size (the row's stored_path)."""
    with psycopg.connect(db_url) as conn:
        with conn.cursor().copy(
                "COPY videos (source_id, name, original_filename, origin, stored_path, size,"
                " status, error_code, processing_error, access_token, created_at, held_at)"
                " FROM STDIN") as copy:
            for r in generated:
                failed = r.status == "failed"
                copy.write_row((r.id_key, r.id_key, "clip.mp4", r.origin, r.stored_path,
                                r.size, r.status, "not_media" if failed else None,
                                "not a media file" if failed else None, f"tok-{r.id_key}",
                                r.created_at, r.created_at if r.held else None))
        ids: dict[str, int] = dict(conn.execute("SELECT source_id, id FROM videos").fetchall())
    rows = [GenRow(ids[r.id_key], r.origin, r.size, r.created_at, r.status, r.held)
            for r in generated]
    if media_root is not None:
        for r in rows:
            path = media_root / r.stored_path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\0" * r.size)
    return rows


def add_derivatives(db_url: str, rows: list[GenRow], media_root: Path, *, seed: int = 2,
                    sizes: tuple[int, int] = (1, 3000)) -> dict[int, int]:
    """Give each ready row a ready poster whose ``data.bytes`` says its file's size (the
    file written under ``derivatives/<source_id>/``) and a ready storyboard that records
    no bytes (one statement; the catalog's trigger sums them per row, as when the derive
    role records them). Returns video id -> its derivatives' bytes."""
    rnd = random.Random(seed)
    made: dict[int, int] = {}
    params = []
    for r in rows:
        if r.status != "ready":
            continue
        size = rnd.randint(*sizes)
        poster = f"derivatives/{r.id_key}/poster.jpg"
        params += [(r.id, "poster", f'{{"file": "{poster}", "bytes": {size}}}'),
                   (r.id, "storyboard",
                    f'{{"sheets": ["derivatives/{r.id_key}/sheet-00.jpg"]}}')]
        path = media_root / poster
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
        made[r.id] = size
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO derivatives (video_id, kind, status, data)"
                     " SELECT v, k, 'ready', d FROM unnest(%s::bigint[], %s::text[],"
                     " %s::jsonb[]) AS x (v, k, d)", [list(c) for c in zip(*params, strict=True)])
    return made
