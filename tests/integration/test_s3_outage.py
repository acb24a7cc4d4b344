"""The s3 media store going away under a running API (issue 20), on real parts: a real S3
server (SeaweedFS) behind a relay the test cuts, PostgreSQL, RabbitMQ, the API over HTTP.
What a user sees is a 503 that says the media store is unavailable and when to try again,
never a 500, and the routes work again once the store is back."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import requests

from testbed.relay import Relay
from testbed.s3 import S3Server
from tests.harness import System
from videodrop.storage import SERVING_DEADLINE


def ready_behind_a_relay(make_system: Any, s3_server: S3Server, bucket: str, samples: Path,
                         serve: str) -> tuple[Relay, System, dict[str, str]]:
    """The prober, the ingest and the API on an s3 store reached through a :class:`Relay`
    (``VIDEODROP_S3_SERVE=serve``), one ready video in it: (relay, system, its api_links)."""
    host, port = s3_server.endpoint.removeprefix("http://").rsplit(":", 1)
    relay = Relay((host, int(port)))
    env = {**s3_server.env(), "VIDEODROP_S3_ENDPOINT_URL": relay.endpoint,
           "VIDEODROP_STORAGE_URL": f"s3://{bucket}/relayed-{secrets.token_hex(4)}",
           "VIDEODROP_S3_SERVE": serve}
    system: System = make_system(**env).start("prober", "ingest", "api")
    (system.inbox / "o.mp4").write_bytes((samples / "bbb_chapters.mp4").read_bytes())
    record = system.wait_record("o.mp4")
    assert record["status"] == "ready", record
    return relay, system, record["api_links"]


@pytest.mark.parametrize("serve", ["redirect", "proxy"])
def test_a_store_that_stops_answering_gets_503_not_500(
        make_system: Any, s3_server: S3Server, s3_bucket: str, samples: Path,
        serve: str) -> None:
    """Every route that reads the store (/download/, /stream/, a frame) answers 503 with
    ``Retry-After`` and the JSON error while the S3 endpoint refuses connections, and its
    usual answer once the endpoint is back; the metadata route, which needs no store,
    answers 200 throughout."""
    relay, system, links = ready_behind_a_relay(make_system, s3_server, s3_bucket, samples,
                                                serve)
    reads = [links["download_url"], links["stream_url"], links["frame_url"].format(t=1)]
    relay.down()
    try:
        for url in reads:
            got = requests.get(url, allow_redirects=False, timeout=120)
            assert got.status_code == 503, (url, got.status_code, got.text[:300])
            assert got.headers.get("Retry-After"), url
            assert got.json()["title"] == "Media store unavailable", got.text
        assert requests.get(links["api_endpoint"], timeout=30).status_code == 200
    finally:
        relay.up()
    for url in reads:
        got = requests.get(url, allow_redirects=False, timeout=120)
        assert got.status_code in {200, 307}, (url, got.status_code, got.text[:300])
    assert "request failed" not in system.log_text("api")


@pytest.mark.parametrize("serve", ["redirect", "proxy"])
def test_a_store_that_hangs_gets_503_within_a_bound(
        make_system: Any, s3_server: S3Server, s3_bucket: str, samples: Path,
        serve: str) -> None:
    """An S3 endpoint that takes connections and never answers (a stopped server, a
    partition) holds an API request at most ``storage.SERVING_DEADLINE`` seconds (then
    503), not the minutes of the roles' patient client, which would hold every thread of
    the worker; the metadata route answers meanwhile."""
    relay, _, links = ready_behind_a_relay(make_system, s3_server, s3_bucket, samples, serve)
    relay.stall()
    try:
        # the bound's own margin, far under the patient client's 4 x 60 s of read timeouts
        got = requests.get(links["download_url"], allow_redirects=False,
                           timeout=SERVING_DEADLINE + 60)
        assert got.status_code == 503, (got.status_code, got.text[:300])
        assert requests.get(links["api_endpoint"], timeout=30).status_code == 200
    finally:
        relay.up()
    got = requests.get(links["download_url"], allow_redirects=False, timeout=120)
    assert got.status_code in {200, 307}, got.status_code
