"""What an upload is called and which formats it may be, over real HTTP against gunicorn,
through the real prober: client paths, the formats of videodrop/formats.py, source_id
folders.

The whole module runs once per media store (``module_store_env``: one system on the file
store, then one on a prefix of the session's bucket on a real S3 server, serving by its
default redirect, followed here): a name and a type are the same on both."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import FORMAT_CLIPS
from tests.harness import System, own_system, rows
from tests.integration.test_api_uploads import media_of, stored_bytes, wait_status

SAMPLE = "tiny_av1.mp4"


@pytest.fixture(scope="module")
def uploads(tmp_path_factory, database_url, amqp_url, amqp_prefix, module_store_env
            ) -> Iterator[System]:
    kind = "s3" if module_store_env else "file"
    with own_system(tmp_path_factory.mktemp(f"upnames-{kind}"), database_url, amqp_url,
                    f"{amqp_prefix}_upnames_{kind}", "api", "prober",
                    **module_store_env) as system:
        yield system


def form(system: System, filename: str, data: bytes, **fields: str) -> requests.Response:
    return requests.post(f"{system.base_url}/api/videos", headers=system.admin, timeout=30,
                         files=[("file", (filename, data, "application/octet-stream")),
                                *((k, (None, v)) for k, v in fields.items())])


def ready(system: System, resp: requests.Response) -> dict:
    assert resp.status_code == 202, resp.text
    done = wait_status(system, resp.json()["api_links"]["access_token"])
    assert done["status"] == "ready", done
    return done


@pytest.mark.parametrize("sent", [
    "C:\\Users\\bob\\Videos\\holiday.mp4",  # old browsers and some tools (RFC 7578 §4.2)
    "/home/bob/Videos/holiday.mp4",
    "holiday.mp4",
])
def test_a_client_path_is_stored_as_its_file_name(uploads, samples, sent):
    data = (samples / SAMPLE).read_bytes()
    sid = f"path{abs(hash(sent)) % 10**8}"
    rec = ready(uploads, form(uploads, sent, data, source_id=sid))
    assert rec["original_filename"] == "holiday.mp4"
    assert rec["file_info"]["filename"] == f"videos/{sid}/holiday.mp4"
    download = requests.get(rec["api_links"]["download_url"], timeout=10)
    assert download.headers["Content-Disposition"] == 'attachment; filename="holiday.mp4"'
    assert download.content == data


def test_a_raw_body_named_with_a_path_in_content_disposition(uploads, samples):
    data = (samples / SAMPLE).read_bytes()
    resp = requests.post(f"{uploads.base_url}/api/videos", data=data, timeout=30, headers={
        **uploads.admin, "Content-Type": "video/mp4",
        "Content-Disposition": 'attachment; filename="C:\\\\clips\\\\holiday.mp4"'})
    rec = ready(uploads, resp)
    assert rec["original_filename"] == "holiday.mp4"
    stream = requests.get(rec["api_links"]["stream_url"], timeout=10)
    assert stream.headers["Content-Disposition"] == 'inline; filename="holiday.mp4"'


@pytest.mark.parametrize("shape", ["raw", "form"])
def test_mpeg_ts_and_3gp_uploads_are_taken_and_served_with_their_types(
        uploads, format_clips, shape):
    for name, (_args, ctype) in FORMAT_CLIPS.items():
        data = (format_clips / name).read_bytes()
        if shape == "raw":
            resp = requests.post(f"{uploads.base_url}/api/videos", data=data, timeout=30,
                                 params={"filename": name},
                                 headers={**uploads.admin, "Content-Type": ctype})
        else:
            resp = form(uploads, name, data)
        rec = ready(uploads, resp)
        stream = requests.get(rec["api_links"]["stream_url"], timeout=10)
        assert stream.headers["Content-Type"] == ctype, name
        assert stream.content == data


def test_a_raw_body_named_by_its_content_type_only(uploads, format_clips):
    data = (format_clips / "clip.ts").read_bytes()
    resp = requests.post(f"{uploads.base_url}/api/videos", data=data, timeout=30,
                         headers={**uploads.admin, "Content-Type": "video/mp2t"})
    rec = ready(uploads, resp)
    assert rec["original_filename"] == "video.ts"


# --- source_id: one id, one folder ------------------------------------------------------

def test_ids_that_once_shared_a_folder_each_get_their_own(uploads, samples):
    data = (samples / SAMPLE).read_bytes()
    made = {sid: ready(uploads, form(uploads, "same.mp4", data, source_id=sid))
            for sid in ("dot.", "dot..", "dot")}
    stored = {sid: rec["file_info"]["filename"] for sid, rec in made.items()}
    assert len(set(stored.values())) == 3, stored
    assert stored["dot"] == "videos/dot/same.mp4"  # a plain id keeps its folder
    for rec in made.values():
        assert requests.get(rec["api_links"]["download_url"], timeout=10).content == data


def test_an_id_whose_folder_an_older_row_holds_is_not_refused(uploads, samples):
    """A row made before ids were kept apart: ``old.`` stored in ``videos/old/``."""
    data = (samples / SAMPLE).read_bytes()
    legacy = ready(uploads, form(uploads, "clip.mp4", data, source_id="old_x"))
    if uploads.extra_env:  # s3: the object copied to the old key, then removed
        media = media_of(uploads)
        with media.open(legacy["file_info"]["filename"]) as reader:
            media.put_stream("videos/old/clip.mp4", reader)  # type: ignore[arg-type]
        assert media.delete(legacy["file_info"]["filename"])
    else:
        (uploads.media_root / "videos" / "old").mkdir(parents=True)
        shutil.move(uploads.media_root / legacy["file_info"]["filename"],
                    uploads.media_root / "videos/old/clip.mp4")
    rows(uploads.database_url, "UPDATE videos SET source_id = 'old.',"
         " stored_path = 'videos/old/clip.mp4' WHERE id = %s RETURNING id", legacy["id"])
    rec = ready(uploads, form(uploads, "clip.mp4", data, source_id="old"))
    assert rec["source_id"] == "old"
    assert rec["file_info"]["filename"] != "videos/old/clip.mp4"
    for made in (legacy, rec):  # both serve their own file
        assert requests.get(made["api_links"]["download_url"], timeout=10).content == data
    taken = form(uploads, "clip.mp4", data, source_id="old")
    assert taken.status_code == 409 and "'old' already exists" in taken.json()["description"]


def test_a_late_source_id_gets_its_own_folder_too(uploads, samples):
    data = (samples / SAMPLE).read_bytes()
    resp = requests.post(f"{uploads.base_url}/api/videos", headers=uploads.admin, timeout=30,
                         files=[("file", ("late.mp4", data)), ("source_id", (None, "late."))])
    rec = ready(uploads, resp)
    assert rec["source_id"] == "late." and rec["file_info"]["filename"] == (
        "videos/late%2E/late.mp4")
    assert stored_bytes(uploads, "videos/late%2E/late.mp4") == data



def test_a_file_named_only_by_its_extension_keeps_it(uploads, samples):
    data = (samples / SAMPLE).read_bytes()
    rec = ready(uploads, form(uploads, ".mp4", data, source_id="dotonly"))
    assert rec["original_filename"] == ".mp4" and rec["name"] == "video"
    assert rec["file_info"]["filename"] == "videos/dotonly/video.mp4"
    download = requests.get(rec["api_links"]["download_url"], timeout=10)
    assert download.headers["Content-Type"] == "video/mp4" and download.content == data
