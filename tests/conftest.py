"""Fixtures shared by every test. Server fixtures (database_url, amqp_url, amqp_prefix,
throwaway servers) live in tests/servers.py."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

# No property test times its examples: hypothesis's default deadline (200 ms an example)
# is a timed assertion, and it failed test_ranges under a machine's load. Speed is
# bench/'s. No example database either: a run does not depend on the runs before it.
hypothesis.settings.register_profile("videodrop", deadline=None, database=None)
hypothesis.settings.load_profile("videodrop")

pytest.register_assert_rewrite("tests.servers", "tests.harness", "testbed")

from testbed import camera_variants  # noqa: E402
from testbed.broker import delete_amqp_names  # noqa: E402
from testbed.databases import drop_database, fresh_database  # noqa: E402
from testbed.system import System  # noqa: E402
from videodrop.catalog import Catalog  # noqa: E402

pytest_plugins = ["tests.servers", "tests.s3server"]

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"
OUTPUT = REPO / "test-output"


@pytest.fixture(scope="session")
def samples() -> Path:
    if not (SAMPLES / "bbb_chapters.mp4").is_file():
        pytest.fail(f"the sample videos are missing: expected ../shared/samples at {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


@pytest.fixture
def db_url(database_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database for one test (on the session's server): a clone of the
    session's migrated template."""
    url = fresh_database(database_url, template=template_database)
    yield url
    drop_database(database_url, url)


@pytest.fixture
def catalog(db_url: str) -> Iterator[Catalog]:
    """The catalog on this test's database."""
    made = Catalog.connect(db_url)
    yield made
    made.close()


@pytest.fixture
def broker_prefix(amqp_url: str, amqp_prefix: str) -> Iterator[str]:
    """Queue and exchange names of one test, inside the session's prefix."""
    prefix = f"{amqp_prefix}_{secrets.token_hex(3)}"
    yield prefix
    delete_amqp_names(amqp_url, prefix)


@pytest.fixture
def make_system(tmp_path: Path, db_url: str, amqp_url: str, broker_prefix: str
                ) -> Iterator[type[System]]:
    """Build (not start) the real system for this test: ``make_system(**extra_env)``."""
    made: list[System] = []

    def make(amqp: str | None = None, **extra_env: str) -> System:
        system = System(tmp_path / f"sys{len(made)}", db_url, amqp or amqp_url, broker_prefix,
                        extra_env=extra_env)
        made.append(system)
        return system

    yield make  # type: ignore[misc]
    for system in made:
        system.stop()


@pytest.fixture
def system(make_system) -> System:  # type: ignore[no-untyped-def]
    """The whole system running: api, prober (2 at once), ingest."""
    return make_system().start()



# The containers of videodrop/formats.py that no sample holds: name → (ffmpeg arguments,
# the Content-Type IANA registered for it).
FORMAT_CLIPS = {
    "clip.ts": (["-c:v", "libx264", "-f", "mpegts"], "video/mp2t"),  # RFC 3555
    "clip.mts": (["-c:v", "libx264", "-f", "mpegts"], "video/mp2t"),  # AVCHD's name
    "clip.m2ts": (["-c:v", "libx264", "-mpegts_m2ts_mode", "1", "-f", "mpegts"],
                  "video/mp2t"),  # Blu-ray's 192-byte packets
    "clip.3gp": (["-c:v", "mpeg4", "-f", "3gp"], "video/3gpp"),  # RFC 3839
}


@pytest.fixture(scope="session")
def format_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One second of each of :data:`FORMAT_CLIPS`, made by ffmpeg."""
    folder = tmp_path_factory.mktemp("format-clips")
    for name, (args, _ctype) in FORMAT_CLIPS.items():
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                        "testsrc=duration=1:size=64x64:rate=10", "-pix_fmt", "yuv420p", *args,
                        str(folder / name)], check=True, timeout=60)
    return folder


@pytest.fixture(scope="session")
def camera_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The camera-style variants of :mod:`testbed.camera_variants`, made by ffmpeg once."""
    folder = tmp_path_factory.mktemp("camera-variants")
    camera_variants.build(folder)
    return folder
