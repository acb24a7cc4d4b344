"""The Falcon app: ``create_app(settings, catalog)`` for tests, ``get_app()`` for gunicorn
(``gunicorn 'api.app:get_app()'``). One media store per worker process
(videodrop/storage/), handed to every resource that reads or writes media."""

from __future__ import annotations

from typing import Any
from wsgiref.types import WSGIApplication

import falcon

from api import openapi
from api.admin import listing, one_video, origins
from api.auth.clients import ClientAddress
from api.auth.credential import AdminAuth, weak_token
from api.auth.sessions import Sessions
from api.auth.throttle import LoginThrottle
from api.derivatives import endpoints as derived
from api.derivatives import scenes as derived_scenes
from api.frames import routes as frames
from api.http import errors
from api.ops import health
from api.ops.metrics import Metrics, RequestMetrics
from api.ops.origin_metrics import OriginMetrics
from api.ops.requestlog import RequestLog, SecurityHeaders
from api.pages import site as pages
from api.tokens import endpoints
from api.tokens.cache import TokenCache
from api.tokens.fastpath import CacheHitFastPath
from api.tokens.sharedstamp import made_for_workers
from api.uploads.probe_requests import ProbeRequests
from api.uploads.receive import Upload
from videodrop import links, logs, storage
from videodrop.catalog import Catalog
from videodrop.changes import ChangeListener
from videodrop.errors import ConfigurationError
from videodrop.links import LinkRemover
from videodrop.origins import OriginRules
from videodrop.settings import Settings
from videodrop.storage import MediaStore
from videodrop.websessions import LoginStore


def create_app(settings: Settings, catalog: Catalog, probes: ProbeRequests | None = None,
               tokens: TokenCache | None = None, request_log: RequestLog | None = None,
               *, media: MediaStore | None = None) -> falcon.App:
    """The app on ``catalog`` and ``media`` (default: the store the settings name)."""
    media = media if media is not None else storage.from_settings(settings, serving=True)
    request_log = request_log or new_request_log(settings)
    middleware: list[Any] = [RequestMetrics(), request_log, SecurityHeaders()]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = False
    app.resp_options.secure_cookies_by_default = settings.base_url.startswith("https")
    for path, endpoint in (("/api/video/{token}/", endpoints.VideoRecord),
                           ("/api/video/{token}/metadata/", endpoints.VideoMetadata),
                           ("/api/video/{token}/download/", endpoints.Download),
                           ("/stream/{token}/", endpoints.Stream)):
        app.add_route(path, endpoint(settings, catalog, tokens, media=media))
    derived.add_routes(app, lambda resource: resource(settings, catalog, tokens, media=media))
    derived_scenes.add_routes(app,
                              lambda resource: resource(settings, catalog, tokens, media=media))
    frames.add_routes(app, settings, catalog, tokens, media)
    for path in ("/api/video/{token}", "/api/video/{token}/metadata",
                 "/api/video/{token}/download", "/stream/{token}",
                 "/api/video/{token}/poster", "/api/video/{token}/storyboard",
                 "/api/video/{token}/scenes", "/api/video/{token}/frame",
                 "/api/video/{token}/frames", "/api/video/{token}/clip",
                 "/api/video/{token}/packets", "/api/video/{token}/range"):
        app.add_route(path, endpoints.TrailingSlash())
    probes = probes or ProbeRequests(settings, catalog, logs.get("api.publishing"), media=media)
    auth = admin_auth(settings, catalog)
    upload = Upload(settings, catalog, probes, media=media)
    app.add_route("/api/videos", listing.VideoList(settings, catalog, auth, upload))
    video_id = "{video_id:int(min=1, max=9223372036854775807)}"
    app.add_route(f"/api/videos/{video_id}", one_video.VideoItem(settings, catalog, auth,
                                                                       media=media))
    app.add_route(f"/api/videos/{video_id}/token", one_video.VideoToken(settings, catalog, auth))
    app.add_route(f"/api/videos/{video_id}/hold", one_video.VideoHold(settings, catalog, auth))
    rules = OriginRules.load(settings.origins_file)
    app.add_route("/api/origins", origins.OriginList(catalog, rules, auth))
    timeline = origins.OriginTimeline(catalog, rules, auth)
    app.add_route(origins.TIMELINE_TEMPLATE, timeline)
    app.add_sink(timeline, origins.TIMELINE_ROUTE)
    app.add_route("/api/openapi.json", openapi.OpenAPI())
    app.add_route("/healthz", health.Health())
    app.add_route("/metrics", Metrics.from_environment(OriginMetrics(catalog, rules)))
    app.add_route("/readyz", health.Ready(settings, catalog))
    site = pages.add_routes(app, settings, catalog, auth, rules)
    errors.register(app, html_page=site.unavailable, html_routes=pages.HTML_ROUTES)
    return app


def admin_auth(settings: Settings, catalog: Catalog) -> AdminAuth:
    """The admin credential's checks: sessions and the login throttle in PostgreSQL (the
    catalog's pool), client addresses as VIDEODROP_TRUSTED_PROXIES says."""
    store = LoginStore(catalog)
    return AdminAuth(settings.admin_token, Sessions(settings.admin_token, store),
                     LoginThrottle(store, settings.login_burst, settings.login_rate),
                     ClientAddress(settings.trusted_proxies))


def new_request_log(settings: Settings) -> RequestLog:
    return RequestLog(logs.get("api"), settings.request_log, settings.request_log_rate)


def get_app() -> WSGIApplication:
    settings = Settings.from_env()
    if problem := weak_token(settings.admin_token) or settings.store_in_use_problem("api"):
        raise ConfigurationError(problem)
    # what the workers share, made by the master before the fork (or refuse to start)
    stamp = made_for_workers() if settings.token_cache_size else None
    logs.configure(role="api", fmt=settings.log_format, level=settings.log_level,
                   batched=True)
    media = storage.from_settings(settings, serving=True)  # this worker's one store
    catalog = Catalog.connect(settings.database_url, min_size=1,
                              max_size=max(2, settings.api_threads),
                              links=links.from_settings(settings, media))
    probes = ProbeRequests(settings, catalog, logs.get("api.publishing"), media=media)
    probes.start()  # per worker: gunicorn calls get_app() after the fork
    if not settings.token_cache_size and catalog.links is None:
        return create_app(settings, catalog, probes, media=media)
    # one listener per worker for the PostgreSQL change notices (videodrop/changes.py)
    changes = ChangeListener(settings.database_url, log=logs.get("api.changes"))
    tokens = None
    if settings.token_cache_size:
        tokens = TokenCache(clock=catalog.clock, log=logs.get("api.tokens"),
                            max_entries=settings.token_cache_size, stamp=stamp)
        tokens.subscribe(changes)  # first: a token is forgotten before its link goes
        catalog.after_write = tokens.changed
    if catalog.links is not None:
        LinkRemover(catalog.links, catalog.prune_links, logs.get("api.links")).subscribe(changes)
    changes.start()
    if tokens is None:
        return create_app(settings, catalog, probes, media=media)
    request_log = new_request_log(settings)
    app = create_app(settings, catalog, probes, tokens, request_log, media=media)
    views = {"": endpoints.VideoRecord(settings, catalog, tokens, media=media),
             "metadata/": endpoints.VideoMetadata(settings, catalog, tokens, media=media)}
    return CacheHitFastPath(app, tokens, views, request_log)
