"""The OpenAPI document against the real gunicorn, exercised by schemathesis.

Runs of ``st run`` (every phase: examples, coverage, fuzzing, stateful) with every
check but the ones a multipart form cannot honour (see CONFIG):

* the whole API, with random tokens and ids, and links from an upload's record to its
  token endpoints and by-id operations (stateful phase);
* the read-only token endpoints of a real, ready video: random Range, If-Range,
  If-None-Match... headers against real bytes; its frame routes in a smaller run of
  their own (each request decodes).

The real video's token endpoints and schema-valid uploads run once per media store (the
``api`` fixture's ``kind``: on s3 the uploads stream into the bucket, /download/ and
/stream/ answer 307 to a presigned URL); the rest (random tokens and ids, the stateful
links, the frame routes: test_frames_stores.py decodes from the bucket) is answered the
same way on both, the whole-API run alone costing minutes: file store only.

The seed is fixed so the suite is deterministic; ``VIDEODROP_SCHEMATHESIS_SEED=random``
(or a number) explores further. A failing run prints schemathesis' report: each failure
with a curl line that reproduces it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.harness import System, drop_database, fresh_database
from tests.integration.test_api_uploads import ready_upload
from tests.s3server import store_settings

ST = str(Path(sys.executable).with_name("st"))
SEED = os.environ.get("VIDEODROP_SCHEMATHESIS_SEED", "20261125")
CONFIG = """
workers = 1
max-failures = 20
[generation]
database = "none"
[checks.negative_data_rejection]
# 414: gunicorn refuses request lines over 4094 bytes before the app sees them.
expected-statuses = [400, 401, 404, 405, 409, 413, 414, 415, 416]

[[operations]]
# A form sends every value as text: 5 sent for a string field *is* the string "5", and
# "null" is a fine source_id. Type violations inside a form cannot be told apart.
include-path = "/api/videos"
include-method = "POST"
checks.negative_data_rejection.enabled = false
"""


# positive_data_acceptance: values the schema allows may still be refused (a cursor of
# another sort). ensure_resource_availability: rotating or revoking a token (POST and
# DELETE /api/videos/{id}/token) makes the old one answer 404 at once, as it must; the
# stateful phase may rotate between creating a video and reading it by the token it was
# created with, which that check (knowing only DELETE of the resource) takes for a created
# resource gone missing.
EXCLUDED = "positive_data_acceptance,ensure_resource_availability"
#: a test run once per media store: the module's ``api`` on the file store, then on s3
BOTH = pytest.mark.parametrize("api", ["file", "s3"], indirect=True)
FILE = pytest.mark.parametrize("api", ["file"], indirect=True)  # the same system as BOTH's
FRAME_ROUTES = "/(frames?|clip)/$"  # api/frames/: a decode (a cut) per request


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, database_url: str, amqp_url: str, amqp_prefix: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One system (api + prober) for the module's runs: starting one per run would cost
    more than the runs. On the store a test names (``BOTH``, ``FILE``)."""
    kind = request.param
    db = fresh_database(database_url, prefix="vdschema")
    root = tmp_path_factory.mktemp(f"schema-{kind}")
    # schemathesis sends wrong tokens on purpose (its ignored_auth check): a burst the run
    # never spends, or the login throttle (tested in test_api_login_throttle.py) would answer
    # its later requests 429
    system = System(root, db, amqp_url, f"{amqp_prefix}_{secrets.token_hex(3)}",
                    extra_env={"VIDEODROP_LOGIN_BURST": "1000000",
                               "VIDEODROP_FRAMES_MAX": "4", **store_settings(request, kind)})
    try:
        yield system.start("api", "prober")
    finally:
        system.stop()
        drop_database(database_url, db)


def st_run(system: System, tmp_path: Path, *args: str, config: str = CONFIG,
           checks: tuple[str, ...] = ("--checks", "all", "--exclude-checks", EXCLUDED)
           ) -> str:
    (tmp_path / "schemathesis.toml").write_text(config)
    seed = [] if SEED == "random" else ["--seed", SEED]
    cmd = [ST, "--config-file", str(tmp_path / "schemathesis.toml"), "--no-color", "run",
           f"{system.base_url}/api/openapi.json", *checks,
           "-H", f"Authorization: Bearer {system.admin_token}", "--request-timeout", "20",
           "--report-dir", str(tmp_path / "report"), *seed, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-20000:] + out.stderr[-5000:]
    assert "Tested:" in out.stdout, out.stdout
    return out.stdout


def examples(system: System, on_file: int) -> str:
    """``--max-examples``: on s3 a quarter of the file store's (a 307 answers whatever the
    headers; the file store's run is the one that explores them against the bytes)."""
    on_s3 = system.extra_env.get("VIDEODROP_STORAGE_URL", "").startswith("s3://")
    return str(on_file // 4 if on_s3 else on_file)


@FILE
def test_the_whole_api_conforms(api, tmp_path):
    st_run(api, tmp_path, "--max-examples", "60")
    # Still alive and well afterwards.
    assert requests.get(f"{api.base_url}/healthz", timeout=5).ok


@BOTH
def test_token_endpoints_of_a_real_video_conform(api, tmp_path, samples):
    rec = ready_upload(api, samples / "sar_2x1.mp4")
    token = rec["api_links"]["access_token"]
    config = CONFIG + f"""
[parameters]
"path.token" = "{token}"
"""
    st_run(api, tmp_path, "--max-examples", examples(api, 80), "--include-path-regex",
           "^/(api/video|stream)/",
           "--exclude-path-regex", FRAME_ROUTES, config=config)
    whole = requests.get(rec["api_links"]["download_url"], timeout=10)
    assert whole.content == (samples / "sar_2x1.mp4").read_bytes()


@FILE
def test_frame_endpoints_of_a_real_video_conform(api, tmp_path, samples):
    """The frame and clip routes decode at every request: fewer examples."""
    rec = ready_upload(api, samples / "sar_2x1.mp4")
    config = CONFIG + f"""
[parameters]
"path.token" = "{rec["api_links"]["access_token"]}"
"""
    st_run(api, tmp_path, "--max-examples", "10", "--include-path-regex", FRAME_ROUTES,
           "--phases", "examples,coverage,fuzzing", config=config)  # no links to follow


@BOTH
def test_positive_uploads_are_accepted(api, tmp_path):
    """Every schema-valid upload is taken (202): the document says exactly what is."""
    st_run(api, tmp_path, "--include-name", "POST /api/videos",
           "--phases", "examples,coverage,fuzzing", "--max-examples", examples(api, 40),
           checks=("--checks", "positive_data_acceptance,not_a_server_error"))
