"""Templates of the web pages (Jinja2, autoescaped) and the filters they use, and the
static files (``api/pages/static/``) served with long-lived cache headers."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import falcon
import jinja2
from markupsafe import Markup

from videodrop import formats

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")


def human_size(n: int | float | None) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    frac = f"{seconds - whole:.2f}"[1:]  # ".25"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}{frac}"


def human_bitrate(bps: int | float | None) -> str:
    if not bps:
        return "—"
    return f"{bps / 1000:.0f} kb/s" if bps < 1_000_000 else f"{bps / 1_000_000:.2f} Mb/s"


def when(value: datetime | None) -> Markup:
    """``<time>`` in UTC; the page script shows it in the reader's time zone."""
    if value is None:
        return Markup("—")
    iso = value.isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}">{}</time>').format(
        iso, value.strftime("%Y-%m-%d %H:%M:%S UTC"))


def elapsed(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


class Static:
    """``GET /static/{name}``: the files of ``api/pages/static/``, read once. Pages link them
    with ``?v=<hash>``, so they may be cached for a year and change with each release."""

    def __init__(self) -> None:
        self.files: dict[str, StaticFile] = {}
        for entry in resources.files("api.pages").joinpath("static").iterdir():
            if entry.is_file() and not entry.name.startswith("."):
                body = entry.read_bytes()
                kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind.endswith(("javascript", "json", "svg+xml")):
                    kind += "; charset=utf-8"
                self.files[entry.name] = StaticFile(
                    body, kind, hashlib.sha256(body).hexdigest()[:16])

    def url(self, name: str) -> str:
        return f"/static/{name}?v={self.files[name].etag}"

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        found = self.files.get(name)
        if found is None:
            raise falcon.HTTPNotFound(title="Not found", description="No such static file.")
        resp.etag = f'"{found.etag}"'
        resp.cache_control = (["public", "max-age=31536000", "immutable"]
                              if req.get_param("v") == found.etag else
                              ["public", "max-age=300"])
        if any(str(tag) in {found.etag, "*"} for tag in req.if_none_match or ()):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = found.content_type
        resp.data = found.body

    on_head = on_get


def environment(static: Static) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("api.pages", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(size=human_size, duration=human_duration, bitrate=human_bitrate,
                       when=when, ext=formats.extension_of)
    env.globals.update(static=static.url, elapsed=elapsed)
    return env


def render(env: jinja2.Environment, resp: falcon.Response, template: str,
           status: str = falcon.HTTP_200, **context: Any) -> None:
    resp.status = status
    resp.content_type = "text/html; charset=utf-8"
    resp.set_header("Content-Security-Policy", CSP)
    resp.set_header("X-Frame-Options", "DENY")
    resp.cache_control = ["no-store"]
    resp.text = env.get_template(template).render(**context)
