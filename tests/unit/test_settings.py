from pathlib import Path

import pytest

from videodrop import formats
from videodrop.settings import DEFAULT_IGNORE, Settings, SettingsError, parse_size


def test_defaults_match_the_design_table():
    s = Settings.from_env({})
    assert s.database_url == "postgresql://localhost/videodrop"
    assert s.amqp_url == "amqp://guest:guest@localhost:5672/%2F"
    assert s.inbox == Path("./var/inbox")
    assert s.media_root == Path("./var/media")
    assert s.base_url == "http://localhost:8000"
    assert s.bind == "127.0.0.1:8000"
    assert s.max_file_size == 100_000_000
    assert s.ffprobe == "ffprobe"
    assert s.probe_timeout == 30
    assert s.admin_token is None
    assert s.settle_seconds == 2
    assert s.rescan_seconds == 300
    assert s.ingest_mode == "auto"
    assert s.ignore_patterns == DEFAULT_IGNORE
    assert s.inbox_extensions == formats.EXTENSIONS
    assert s.inbox_max_file_size is None


def test_the_inbox_policy_settings():
    s = Settings.from_env({"VIDEODROP_INBOX_EXTENSIONS": "mp4, .MKV,264,",
                           "VIDEODROP_INBOX_MAX_FILE_SIZE": "20GB"})
    assert s.inbox_extensions == frozenset({"mp4", "mkv", "264"})
    assert s.inbox_max_file_size == 20_000_000_000


def test_reads_prefixed_variables():
    s = Settings.from_env({
        "VIDEODROP_INBOX": "/srv/in", "VIDEODROP_MAX_FILE_SIZE": "2GiB",
        "VIDEODROP_PROBE_TIMEOUT": "2.5", "VIDEODROP_PROBER_CONCURRENCY": "3",
        "VIDEODROP_ADMIN_TOKEN": "s3cret", "VIDEODROP_IGNORE_PATTERNS": "*.tmp, .*",
        "VIDEODROP_AMQP_PREFIX": "vd_test", "VIDEODROP_ACCEL_REDIRECT": "/protected",
        "UNRELATED": "x",
    })
    assert s.inbox == Path("/srv/in")
    assert s.max_file_size == 2 * 1024**3
    assert s.probe_timeout == 2.5
    assert s.prober_concurrency == 3
    assert s.admin_token == "s3cret"
    assert s.ignore_patterns == ("*.tmp", ".*")
    assert (s.exchange, s.probe_queue, s.dead_queue) == ("vd_test", "vd_test.probe",
                                                          "vd_test.probe.dead")
    assert s.accel_redirect == "/protected/"


@pytest.mark.parametrize(("text", "n"), [("100MB", 100_000_000), ("1k", 1000), ("12345", 12345),
                                         ("1.5GB", 1_500_000_000), ("1MiB", 1 << 20)])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("env", [
    {"VIDEODROP_MAX_FILE_SIZE": "lots"},
    {"VIDEODROP_PROBE_TIMEOUT": "soon"},
    {"VIDEODROP_INGEST_MODE": "magic"},
    {"VIDEODROP_PROBER_CONCURRENCY": "0"},
    {"VIDEODROP_AMQP_PREFIX": "a b"},
    {"VIDEODROP_DELIVERY_LIMIT": "0"},
    {"VIDEODROP_REQUEST_LOG": "some"},
    {"VIDEODROP_TOKEN_CACHE_SIZE": "-1"},
    {"VIDEODROP_INBOX_EXTENSIONS": ", ."},
    {"VIDEODROP_INBOX_MAX_FILE_SIZE": "0"},
    {"VIDEODROP_INBOX_MAX_FILE_SIZE": "big"},
    {"VIDEODROP_HEADER_TIMEOUT": "0"},
    {"VIDEODROP_LOGIN_BURST": "0"},
    {"VIDEODROP_LOGIN_RATE": "0"},
    {"VIDEODROP_TRUSTED_PROXIES": "10.0.0.0/8, nginx.local"},
])
def test_bad_values_name_the_variable(env):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert "VIDEODROP_" in str(err.value)


def test_child_memory():
    assert Settings.from_env({}).child_memory == 1 << 30
    assert Settings.from_env({"VIDEODROP_CHILD_MEMORY": "2GiB"}).child_memory == 2 << 30
    with pytest.raises(SettingsError, match="VIDEODROP_CHILD_MEMORY"):
        Settings.from_env({"VIDEODROP_CHILD_MEMORY": "100MB"})


def test_the_api_limits() -> None:
    s = Settings.from_env({})
    assert (s.header_timeout, s.login_burst, s.login_rate) == (10.0, 10, 10.0)
    assert s.trusted_proxies == ("127.0.0.1", "::1")
    s = Settings.from_env({"VIDEODROP_HEADER_TIMEOUT": "2.5", "VIDEODROP_LOGIN_BURST": "3",
                           "VIDEODROP_LOGIN_RATE": "0.5",
                           "VIDEODROP_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32"})
    assert (s.header_timeout, s.login_burst, s.login_rate) == (2.5, 3, 0.5)
    assert s.trusted_proxies == ("10.0.0.0/8", "2001:db8::/32")
    assert Settings.from_env({"VIDEODROP_TRUSTED_PROXIES": "none"}).trusted_proxies == ()


def test_the_clip_limits() -> None:
    s = Settings.from_env({})
    assert (s.clip_max_seconds, s.clip_max_bytes, s.clip_concurrency, s.clip_timeout) == (
        60.0, 512 << 20, 1, 120.0)
    s = Settings.from_env({"VIDEODROP_CLIP_MAX_SECONDS": "12.5",
                           "VIDEODROP_CLIP_MAX_BYTES": "64MiB",
                           "VIDEODROP_CLIP_CONCURRENCY": "3", "VIDEODROP_CLIP_TIMEOUT": "9"})
    assert (s.clip_max_seconds, s.clip_max_bytes, s.clip_concurrency, s.clip_timeout) == (
        12.5, 64 << 20, 3, 9.0)
    for name, bad in (("MAX_SECONDS", "0"), ("MAX_BYTES", "0"), ("CONCURRENCY", "0"),
                      ("TIMEOUT", "inf")):
        with pytest.raises(SettingsError, match="VIDEODROP_CLIP_"):
            Settings.from_env({f"VIDEODROP_CLIP_{name}": bad})
