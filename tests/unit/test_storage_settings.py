"""Which media store the settings name (videodrop/storage/__init__.py), and the settings'
own checks; no server is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from videodrop.errors import ConfigurationError
from videodrop.settings import Settings, SettingsError
from videodrop.storage import FileStore, from_settings, from_url, local_root
from videodrop.storage.base import Verifier, check_key
from videodrop.storage.errors import IntegrityFailure
from videodrop.storage.s3store import S3Store, parse_s3_url


def test_default_is_the_media_root_folder(tmp_path: Path) -> None:
    store = from_settings(Settings.from_env({"VIDEODROP_MEDIA_ROOT": str(tmp_path / "a b")}))
    assert isinstance(store, FileStore) and store.root == tmp_path / "a b"


def test_file_url(tmp_path: Path) -> None:
    store = from_url((tmp_path / "m%x").as_uri())
    assert isinstance(store, FileStore) and store.root == tmp_path / "m%x"
    for bad in ("file://host/x", "file:relative", "ftp://x/y", "s3://", "s3:///prefix"):
        with pytest.raises(ConfigurationError, match=r"^VIDEODROP_STORAGE_URL"):
            from_url(bad)
        with pytest.raises(ConfigurationError, match=r"^--to"):  # what named it
            from_url(bad, named_by="--to")


def test_s3_url_and_its_settings() -> None:
    settings = Settings.from_env({
        "VIDEODROP_STORAGE_URL": "s3://media-bucket/site/one/",
        "VIDEODROP_S3_ENDPOINT_URL": "http://127.0.0.1:8333", "VIDEODROP_S3_REGION": "eu-x",
        "VIDEODROP_S3_PRESIGN_SECONDS": "30", "VIDEODROP_S3_PART_SIZE": "8MiB"})
    store = from_settings(settings)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.presign_seconds, store.part_size) == (
        "media-bucket", "site/one/", 30.0, 8 << 20)
    assert store.describe() == "s3://media-bucket/site/one/ at http://127.0.0.1:8333"
    assert parse_s3_url("s3://b") == ("b", "")
    with pytest.raises(ValueError):
        parse_s3_url("s3://b/../x")


@pytest.mark.parametrize(("name", "value"), [
    ("VIDEODROP_STORAGE_URL", "/var/media"), ("VIDEODROP_S3_PRESIGN_SECONDS", "61"),
    ("VIDEODROP_S3_PRESIGN_SECONDS", "0"), ("VIDEODROP_S3_PART_SIZE", "4MiB"),
    ("VIDEODROP_S3_CHECKSUM", "sha1")])
def test_bad_settings_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_keys() -> None:
    assert check_key("videos/abc/clip one.mp4") == "videos/abc/clip one.mp4"
    for bad in ("", "/a", "a/", "a//b", "./a", "a/../b", ".hidden", "a/\x7f", "é" * 513):
        with pytest.raises(ValueError):
            check_key(bad)


def test_verifier() -> None:
    v = Verifier(3, None)
    v.update(b"abc")
    assert v.check() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(IntegrityFailure):
        Verifier(2, None).update(b"abc")
    with pytest.raises(IntegrityFailure):
        Verifier(4, None).check()
    with pytest.raises(IntegrityFailure):
        Verifier(None, "0" * 64).check()


def test_every_role_runs_on_either_store(tmp_path):
    """Every role works on any file:// store and on an s3:// one; a role not named in
    S3_ROLES (one to come) refuses s3 at start rather than silently ignoring it."""
    root = tmp_path / "media"
    assert Settings(media_root=root).store_in_use_problem() is None
    assert Settings(media_root=root, storage_url=root.as_uri()).store_in_use_problem() is None
    other = Settings(media_root=root, storage_url=(tmp_path / "elsewhere").as_uri())
    assert other.store_in_use_problem() is None
    s3 = Settings(media_root=root, storage_url="s3://bucket/media")
    assert "s3://" in (s3.store_in_use_problem() or "")
    assert "newrole role" in (s3.store_in_use_problem("newrole") or "")
    for role in ("ingest", "prober", "derive", "api", "retention"):  # s3 paths in place
        assert s3.store_in_use_problem(role) is None


def test_how_s3_objects_are_served() -> None:
    assert Settings().s3_serve == "redirect"
    assert Settings.from_env({"VIDEODROP_S3_SERVE": "proxy"}).s3_serve == "proxy"
    with pytest.raises(SettingsError, match="VIDEODROP_S3_SERVE"):
        Settings.from_env({"VIDEODROP_S3_SERVE": "sendfile"})


def test_local_root_is_the_file_stores_folder_only(tmp_path: Path) -> None:
    assert local_root(FileStore(tmp_path)) == tmp_path
    with pytest.raises(ConfigurationError, match="file://"):
        local_root(from_url("s3://bucket/media/"))


@pytest.mark.parametrize("bucket", ["Bad_Bucket!", "user@bucket", "bucket:9000", "b%20c"])
def test_s3_url_with_no_bucket_name_is_a_configuration_error(bucket: str) -> None:
    # boto3 refuses such a name before any request (ParamValidationError), which the
    # roles took for a store that does not answer: the prober waited forever instead of
    # stopping with exit 78
    with pytest.raises(ValueError, match="no bucket name"):
        parse_s3_url(f"s3://{bucket}/p")
    with pytest.raises(ConfigurationError, match="VIDEODROP_STORAGE_URL"):
        from_url(f"s3://{bucket}/p")


@pytest.mark.parametrize("env", [
    {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": ""},  # the secret left out
    {"AWS_PROFILE": "videodrop-no-such-profile"}])
def test_s3_credentials_misconfigured_are_a_configuration_error(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # botocore reads the credential chain as the client is made and raised its own error
    # there: every role died with a traceback (the API's workers failed to boot) instead
    # of one sentence and exit 78
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="AWS credentials or configuration"):
        from_url("s3://media-bucket/p")
