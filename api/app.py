"""The Falcon app: ``create_app(settings, catalog)`` for tests, ``get_app()`` for gunicorn
(``gunicorn 'api.app:get_app()'``)."""

from __future__ import annotations

from typing import Any
from wsgiref.types import WSGIApplication

import falcon

from api import admin, failures, health, manage, openapi, pages, resources
from api.auth import AdminAuth, weak_token
from api.clients import ClientAddress
from api.metrics import Metrics, RequestMetrics
from api.middleware import RequestLog, SecurityHeaders
from api.publishing import ProbeRequests
from api.recordcache import CachedRecords
from api.session import Sessions
from api.sharedstamp import made_for_workers
from api.throttle import LoginThrottle
from api.tokencache import TokenCache
from api.uploads import Upload
from videodrop import links, logs
from videodrop.catalog import Catalog
from videodrop.errors import ConfigurationError
from videodrop.settings import Settings
from videodrop.websessions import LoginStore


def create_app(settings: Settings, catalog: Catalog, probes: ProbeRequests | None = None,
               tokens: TokenCache | None = None, request_log: RequestLog | None = None
               ) -> falcon.App:
    request_log = request_log or new_request_log(settings)
    middleware: list[Any] = [RequestMetrics(), request_log, SecurityHeaders()]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = False
    app.resp_options.secure_cookies_by_default = settings.base_url.startswith("https")
    for path, endpoint in (("/api/video/{token}/", resources.VideoRecord),
                           ("/api/video/{token}/metadata/", resources.VideoMetadata),
                           ("/api/video/{token}/download/", resources.Download),
                           ("/stream/{token}/", resources.Stream)):
        app.add_route(path, endpoint(settings, catalog, tokens))
    for path in ("/api/video/{token}", "/api/video/{token}/metadata",
                 "/api/video/{token}/download", "/stream/{token}"):
        app.add_route(path, resources.TrailingSlash())
    probes = probes or ProbeRequests(settings, catalog, logs.get("api.publishing"))
    auth = admin_auth(settings, catalog)
    app.add_route("/api/videos",
                  admin.VideoList(settings, catalog, auth, Upload(settings, catalog, probes, auth)))
    video_id = "{video_id:int(min=1, max=9223372036854775807)}"
    app.add_route(f"/api/videos/{video_id}", manage.VideoItem(settings, catalog, auth))
    app.add_route(f"/api/videos/{video_id}/token", manage.VideoToken(settings, catalog, auth))
    app.add_route("/api/openapi.json", openapi.OpenAPI())
    app.add_route("/healthz", health.Health())
    app.add_route("/metrics", Metrics.from_environment())
    app.add_route("/readyz", health.Ready(settings, catalog))
    pages.add_routes(app, settings, catalog, auth)
    failures.register(app)
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
    if problem := weak_token(settings.admin_token):
        raise ConfigurationError(problem)
    # what the workers share, made by the master before the fork (or refuse to start)
    stamp = made_for_workers() if settings.token_cache_size else None
    logs.configure(role="api", fmt=settings.log_format, level=settings.log_level,
                   batched=True)
    catalog = Catalog.connect(settings.database_url, min_size=1,
                              max_size=max(2, settings.api_threads),
                              links=links.from_settings(settings))
    probes = ProbeRequests(settings, catalog, logs.get("api.publishing"))
    probes.start()  # per worker: gunicorn calls get_app() after the fork
    tokens = None
    if settings.token_cache_size or catalog.links is not None:
        # with the cache off, its listener still runs for the stream links
        tokens = TokenCache(settings.database_url, clock=catalog.clock,
                            log=logs.get("api.tokens"), max_entries=settings.token_cache_size,
                            stamp=stamp, stream_links=catalog.links,
                            resync=catalog.prune_links)
        catalog.after_write = tokens.changed
        tokens.start()
    if tokens is None or not settings.token_cache_size:
        return create_app(settings, catalog, probes)
    request_log = new_request_log(settings)
    app = create_app(settings, catalog, probes, tokens, request_log)
    views = {"": resources.VideoRecord(settings, catalog, tokens),
             "metadata/": resources.VideoMetadata(settings, catalog, tokens)}
    return CachedRecords(app, tokens, views, request_log)
