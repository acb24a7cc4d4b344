"""The web pages: log in with the admin token, the library, adding files, one video.

Server-rendered with Jinja2 (``api/templates/``) and a little plain JavaScript
(``api/static/``), nothing fetched from elsewhere. Logging in trades the admin token for
an HttpOnly, SameSite=Strict session cookie (api/auth/sessions.py); the pages' scripts then
call the management API (``/api/videos``…) with that cookie and an ``X-CSRF-Token``.

Routes (``add_routes``):

* ``GET /login``, ``POST /login`` (wrong tokens count against the client's address:
  api/auth/throttle.py), ``POST /logout`` (ends the session server-side; with
  ``everywhere=1``, every session)
* ``GET /`` the library; ``GET /library.json`` the same page as JSON, polled for live
  status badges
* ``GET /source-management/add/?type=file`` and ``GET /upload``: add files
* ``GET /videos/{id}``: one video; ``GET /videos/{id}/live.json`` what of it changes by
  itself, polled by the page (api/pages/video.py)
* ``GET /origins``: the origins and one origin's day strip (api/pages/timeline.py)
* ``GET /static/{name}``: the stylesheet and scripts
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import falcon
import jinja2

from api.auth.credential import AdminAuth
from api.auth.sessions import clear_cookie, same_origin, set_cookie
from api.auth.throttle import Throttled
from api.http.params import bad
from api.pages import library
from api.pages.render import Static, environment, render
from api.pages.timeline import OriginsPage
from api.pages.video import VideoLive, VideoPage
from videodrop import formats
from videodrop.catalog import STATUSES, Catalog
from videodrop.origins import OriginRules
from videodrop.settings import Settings

NOTICES = {"rotated": "A new token was made; the old links no longer work.",
           "revoked": "The token was revoked; every link of this video now answers 404.",
           "held": "The video is held: no retention rule removes it.",
           "released": "The hold is lifted: the retention rules apply again.",
           "deleted": "The video and its file were deleted.",
           "loggedout": "You are logged out.",
           "everywhere": "Every session is logged out, on every browser."}


VIDEO_PAGE = "/videos/{video_id:int(min=1, max=9223372036854775807)}"
# the routes answered in HTML: their 503 is the page of :meth:`Site.unavailable`
# (api/http/errors.py); /library.json answers in JSON like the API
HTML_ROUTES = ("/login", "/logout", "/", "/upload", "/source-management/add/", VIDEO_PAGE,
               "/origins")


def add_routes(app: falcon.App, settings: Settings, catalog: Catalog, auth: AdminAuth,
               origins: OriginRules | None = None) -> Site:
    """The pages' routes (module docstring), on ``app``; the site they share. ``origins``:
    the timeline's settings (VIDEODROP_ORIGINS_FILE; None: the defaults)."""
    static = Static()
    site = Site(settings, catalog, auth, environment(static))
    app.add_route("/static/{name}", static)
    app.add_route("/login", Login(site))
    app.add_route("/logout", Logout(site))
    app.add_route("/", Library(site))
    app.add_route("/library.json", LibraryLive(site))
    add = AddPage(site)
    app.add_route("/upload", add)
    app.add_route("/source-management/add/", add)
    app.add_route("/source-management/add", add, suffix="slash")
    app.add_route(VIDEO_PAGE, VideoPage(site))
    app.add_route(VIDEO_PAGE + "/live.json", VideoLive(site))
    app.add_route("/origins", OriginsPage(site, origins or OriginRules()))
    return site


def safe_next(target: str | None) -> str:
    """Only a path of this site: never ``//other.host`` or ``https://…``, and nothing but
    printable ASCII (what a browser sends in a request line, percent-encoded beyond that):
    the value goes into a ``Location`` header, where a CR, LF, NUL or U+2028 has no place."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or not all("!" <= ch <= "~" for ch in target)):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


class Site:
    """What every page needs: settings, catalog, templates, and the login check."""

    def __init__(self, settings: Settings, catalog: Catalog, auth: AdminAuth,
                 env: jinja2.Environment) -> None:
        self.settings = settings
        self.catalog = catalog
        self.auth = auth
        self.sessions = auth.sessions
        self.env = env

    def session(self, req: falcon.Request) -> str:
        """The session cookie of a logged-in browser; others are sent to the login page."""
        value = self.sessions.of(req)
        if value is None:
            target = req.relative_uri if req.method == "GET" else "/"
            raise falcon.HTTPSeeOther(f"/login?next={quote(target, safe='')}")
        return value

    def page(self, req: falcon.Request, resp: falcon.Response, template: str, *,
             status: str = falcon.HTTP_200, **context: Any) -> None:
        value = self.sessions.of(req)
        logged_in = value is not None
        csrf = self.sessions.csrf_token(value) if value is not None else ""
        notice = NOTICES.get(req.get_param("done") or "")
        render(self.env, resp, template, status=status, logged_in=logged_in, csrf=csrf,
               notice=notice, path=req.path, **context)

    def unavailable(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The 503 page: the database cannot be reached (registered by api/app.py)."""
        self.page(req, resp, "message.html", status=falcon.HTTP_503, title="Unavailable",
                  message="The database cannot be reached right now; try again shortly.")
        resp.retry_after = 5


def _to_login(req: falcon.Request, resp: falcon.Response, resource: Any,
              params: dict[str, Any]) -> None:
    resource.site.session(req)


# ``@logged_in`` on a page's responder: a browser without a session is sent to the login
# page (:meth:`Site.session`) before the responder runs.
logged_in = falcon.before(_to_login)


class Login:
    def __init__(self, site: Site) -> None:
        self.site = site

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.site.sessions.of(req) is not None:
            raise falcon.HTTPSeeOther(safe_next(req.get_param("next")))
        self.site.page(req, resp, "login.html", next=safe_next(req.get_param("next")),
                       error=None, enabled=bool(self.site.settings.admin_token))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        admin_token = self.site.settings.admin_token
        form = _form(req)
        target = safe_next(form.get("next"))
        given = form.get("token", "").strip()
        if not same_origin(req, self.site.settings.base_url):
            raise falcon.HTTPForbidden(title="Forbidden",
                                       description="Log in from a page of this site.")
        try:
            right = bool(admin_token and given) and self.site.auth.token_ok(req, given)
        except Throttled as exc:
            self.site.page(req, resp, "login.html", status=falcon.HTTP_429, next=target,
                           enabled=True, error=exc.description)
            resp.retry_after = exc.wait
            return
        if right:
            value = self.site.sessions.begin(self.site.auth.client(req))
            set_cookie(resp, value)
            _see_other(resp, target)
            return
        self.site.page(req, resp, "login.html", status=falcon.HTTP_200, next=target,
                       enabled=bool(admin_token),
                       error="That is not the admin token." if admin_token else None)


class Logout:
    def __init__(self, site: Site) -> None:
        self.site = site

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        sessions = self.site.sessions
        value = sessions.of(req)
        form = _form(req)
        if value is not None and not (sessions.csrf_ok(value, form.get("csrf"))
                                      and same_origin(req, self.site.settings.base_url)):
            raise falcon.HTTPForbidden(title="CSRF check failed",
                                       description="Log out from a page of this site.")
        done = "loggedout"
        if value is not None and form.get("everywhere") == "1":
            sessions.end_all()
            done = "everywhere"
        elif value is not None:
            sessions.end(value)
        clear_cookie(resp)
        _see_other(resp, f"/login?done={done}")


def _see_other(resp: falcon.Response, location: str) -> None:
    resp.status = falcon.HTTP_303
    resp.location = location
    resp.cache_control = ["no-store"]


def _form(req: falcon.Request) -> dict[str, str]:
    """A small urlencoded form (login, logout)."""
    if (req.content_length or 0) > 8192:
        raise falcon.HTTPContentTooLarge(title="Too large", description="A form this big?")
    if req.content_length is None and req.get_header("Transfer-Encoding"):
        # read only a body of announced length: a chunked one could go on without end
        raise falcon.HTTPLengthRequired(title="Length required",
                                        description="Send the form with a Content-Length.")
    if not (req.content_type or "").startswith("application/x-www-form-urlencoded"):
        return {}
    data = req.get_media(default_when_empty={})
    return {k: v for k, v in data.items() if isinstance(v, str)}


def library_view(site: Site, query: library.LibraryQuery) -> library.LibraryView:
    """The library's rows, counts and inbox arrivals for ``query`` (page and JSON alike)."""
    settings = site.settings
    return library.load(site.catalog, query, settings.inbox, settings.ignore_patterns,
                        settings.inbox_extensions, max_size=settings.inbox_max_file_size,
                        settle=settings.settle_seconds)


class Library:
    def __init__(self, site: Site) -> None:
        self.site = site

    @logged_in
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            query = library.LibraryQuery.from_request(req)
        except ValueError as exc:
            self.site.page(req, resp, "message.html", status=falcon.HTTP_400,
                           title="Unknown sort", message=f"{str(exc).capitalize()}.",
                           link=("/", "Back to the library"))
            return
        view = library_view(self.site, query)
        self.site.page(req, resp, "library.html", view=view, statuses=STATUSES,
                       sortable=library.SORTABLE, live_url=query.url("/library.json"))


class LibraryLive:
    """``GET /library.json``: the library page's rows, counts and arrivals, for polling."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.site.sessions.of(req) is None:
            raise falcon.HTTPUnauthorized(title="Logged out",
                                          description="Log in again.")
        try:
            query = library.LibraryQuery.from_request(req)
        except ValueError as exc:
            raise bad("sort", str(exc)) from exc
        view = library_view(self.site, query)
        parts = self.site.env.get_template("_library_parts.html").module
        resp.cache_control = ["no-store"]
        resp.media = {
            "counts": view.counts,
            "total": view.total,
            "rows": [{"id": v.id, "status": v.status, "name": v.name,
                      "html": str(parts.row(v))} for v in view.videos],  # type: ignore[attr-defined]
            "arriving": str(parts.arriving(view.arriving)),  # type: ignore[attr-defined]
        }


class AddPage:
    def __init__(self, site: Site) -> None:
        self.site = site

    @logged_in
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        kind = req.get_param("type") or "file"
        if kind != "file":
            self.site.page(req, resp, "message.html", status=falcon.HTTP_404,
                           title="Unknown source type",
                           message=f"Sources of type {kind!r} are not supported; add files "
                                   "instead.", link=("/upload", "Add files"))
            return
        self.site.page(req, resp, "add.html", max_size=self.site.settings.max_file_size,
                       extensions=sorted(formats.EXTENSIONS),
                       inbox=str(self.site.settings.inbox),
                       base_url=self.site.settings.base_url.rstrip("/"))

    def on_get_slash(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPPermanentRedirect(
            "/source-management/add/" + (f"?{req.query_string}" if req.query_string else ""))
