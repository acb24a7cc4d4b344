"""When PostgreSQL cannot be reached, every endpoint that needs it answers 503 with
``Retry-After: 5``: the JSON error of the API, or the pages' HTML 503 page. One handler
(api/http/errors.py) makes both; resources let CatalogUnavailable through.

The database here is a real psycopg pool aimed at a port where nothing listens (connection
refused), so the failure is the driver's own, wrapped by the catalog."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import falcon.testing
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from api.app import create_app
from videodrop.catalog import Catalog
from videodrop.settings import Settings

ADMIN = secrets.token_urlsafe(32)
TOKEN = secrets.token_urlsafe(32)
JSON_503 = {"title": "Catalog unavailable",
            "description": "The database cannot be reached; try again shortly."}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[falcon.testing.TestClient]:
    root = tmp_path_factory.mktemp("unavailable")
    pool = ConnectionPool(f"postgresql://videodrop@127.0.0.1:{closed_port()}/videodrop",
                          min_size=0, max_size=1, open=True, timeout=0.5,
                          kwargs={"row_factory": dict_row, "connect_timeout": 1})
    settings = Settings(admin_token=ADMIN, media_root=root / "media", inbox=root / "inbox",
                        request_log="off")
    app = create_app(settings, Catalog(pool))
    try:
        yield falcon.testing.TestClient(app)
    finally:
        pool.close()


@pytest.mark.parametrize("path", [f"/api/video/{TOKEN}/", f"/api/video/{TOKEN}/metadata/",
                                  f"/api/video/{TOKEN}/download/", f"/stream/{TOKEN}/"])
def test_token_endpoints_answer_503_json(client, path):
    resp = client.simulate_get(path)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.json == JSON_503


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/videos"),
                                              ("GET", "/api/videos/1"),
                                              ("DELETE", "/api/videos/1"),
                                              ("POST", "/api/videos/1/token"),
                                              ("DELETE", "/api/videos/1/token")])
def test_management_answers_503_json(client, method, path):
    resp = client.simulate_request(method, path, headers={"Authorization": f"Bearer {ADMIN}"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.json == JSON_503


def test_management_asks_for_the_credential_before_the_database(client):
    assert client.simulate_get("/api/videos/1").status_code == 401


def test_upload_answers_503_json(client):
    resp = client.simulate_post("/api/videos?filename=a.mp4", body=b"\0" * 1024,
                                headers={"Authorization": f"Bearer {ADMIN}",
                                         "Content-Type": "video/mp4"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.json == JSON_503


def test_pages_answer_their_503_page(client):
    resp = client.simulate_post("/login", body=f"token={ADMIN}&next=/",
                                headers={"Content-Type": "application/x-www-form-urlencoded",
                                         "Origin": "http://localhost:8000"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "The database cannot be reached right now" in resp.text
