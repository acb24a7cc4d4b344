"""The Falcon app: ``create_app(settings, catalog)`` for tests, ``get_app()`` for gunicorn
(``gunicorn 'api.app:get_app()'``)."""

from __future__ import annotations

import falcon

from api import admin, health, resources
from api.middleware import RequestLog, SecurityHeaders
from videodrop import logs
from videodrop.catalog import Catalog
from videodrop.settings import Settings


def create_app(settings: Settings, catalog: Catalog) -> falcon.App:
    log = logs.get("api")
    app = falcon.App(middleware=[RequestLog(log), SecurityHeaders()])
    app.req_options.strip_url_path_trailing_slash = False
    app.resp_options.secure_cookies_by_default = settings.base_url.startswith("https")
    app.add_route("/api/video/{token}/", resources.VideoRecord(settings, catalog))
    app.add_route("/api/video/{token}/metadata/", resources.VideoMetadata(settings, catalog))
    app.add_route("/api/video/{token}/download/", resources.Download(settings, catalog))
    app.add_route("/stream/{token}/", resources.Stream(settings, catalog))
    app.add_route("/api/videos", admin.VideoList(settings, catalog))
    app.add_route("/healthz", health.Health())
    app.add_route("/readyz", health.Ready(settings, catalog))
    return app


def get_app() -> falcon.App:
    settings = Settings.from_env()
    logs.configure(role="api", fmt=settings.log_format, level=settings.log_level)
    catalog = Catalog.connect(settings.database_url, min_size=1,
                              max_size=max(2, settings.api_threads))
    return create_app(settings, catalog)
