"""Writers and permissions (issue 17): folders and files a writer leaves unusable to the
service — a folder it cannot move files out of (2755), one it cannot list (0700), a file
it cannot read (0600) — are logged once each with the fix, counted, not published (a
prober could only retry them without end), and taken once fixed, with new files in the
folder that could not be watched seen at once.

Root passes every permission check, so the ingest runs here as `nobody` (standing in for
the service user), on the real broker, while the test writes as root (the writer). Its
folder lives in a temporary folder made 0755 under /tmp, which `nobody` can enter (the
test's own tmp_path is 0700); the checkout and its virtualenv must be readable to it."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from testbed.processes import python_for_others
from tests.harness import REPO, System, free_port, wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="running the ingest as another user needs root")

SERVICE = "nobody"
CLIP = "tiny_av1.mp4"


@pytest.fixture
def workspace() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="vdperm-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def start_ingest_as(system: System, user: str, groups: tuple[int, ...] = ()
                    ) -> subprocess.Popen[bytes]:
    entry = pwd.getpwnam(user)
    python, path = python_for_others()
    log = (system.logs / "ingest.log").open("ab")
    proc = subprocess.Popen(
        [python, "-m", "videodrop", "ingest"],
        env={**system.env, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/"},
        cwd=REPO,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        user=entry.pw_uid, group=entry.pw_gid, extra_groups=list(groups))
    system.procs["ingest"] = proc
    return proc


def published(system: System) -> list[str]:
    return [e["path"] for e in system.log_events("ingest", "published")]


def problems(system: System) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for line in system.log_events("ingest", "inbox permission problem"):
        assert line["path"] not in found, f"{line['path']} logged twice"
        found[line["path"]] = line
    return found


def metric(system: System, family: str) -> dict[str, float]:
    [url] = [line["url"] for line in system.log_events("ingest", "metrics")]
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {s.labels.get("kind", ""): s.value for fam in text_string_to_metric_families(text)
            if fam.name == family for s in fam.samples if not s.name.endswith("_created")}


@pytest.fixture
def make_system(workspace: Path, db_url: str, amqp_url: str, broker_prefix: str
                ) -> Callable[[str], System]:
    """The system's folders in ``workspace``, its ingest in the given mode (not started)."""
    def make(mode: str = "inotify") -> System:
        port = free_port()
        return System(workspace / "sys", db_url, amqp_url, broker_prefix, extra_env={
            "VIDEODROP_METRICS_BIND": f"127.0.0.1:{port}-{port + 20}",
            "VIDEODROP_RESCAN_SECONDS": "3600",  # nothing below may be saved by a rescan
            "VIDEODROP_INGEST_MODE": mode})
    return make


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_permission_problems_are_logged_once_counted_and_taken_once_fixed(
        mode: str, make_system: Callable[[str], System], samples: Path) -> None:
    """In poll mode a fix is found by the next look (no event tells of a chmod), and a
    folder that cannot be listed no longer stops the polling of the whole inbox."""
    service = pwd.getpwnam(SERVICE)
    system = make_system(mode)
    data = (samples / CLIP).read_bytes()
    inbox = system.inbox
    os.chown(inbox, service.pw_uid, service.pw_gid)
    # made by a writer before the service starts: a folder 2755 (readable, not writable to
    # the service), and a file 0600 in a folder everyone may write
    (inbox / "cam1").mkdir(mode=0o2755)
    (inbox / "cam1" / "a.mp4").write_bytes(data)
    (inbox / "cam3").mkdir()
    (inbox / "cam3").chmod(0o777)
    (inbox / "cam3" / "c.mp4").write_bytes(data)
    (inbox / "cam3" / "c.mp4").chmod(0o600)
    try:
        start_ingest_as(system, SERVICE)
        wait_for(lambda: system.log_events("ingest", "rescan"), what="the ingest watching")
        # made while it watches: a folder 0700 (the service can neither list nor watch it)
        (inbox / "cam2").mkdir(mode=0o700)
        (inbox / "cam2" / "b.mp4").write_bytes(data)
        (inbox / "ok.mp4").write_bytes(data)
        wait_for(lambda: len(problems(system)) == 3 and "ok.mp4" in published(system),
                 timeout=60, what="three permission problems, and ok.mp4 published")
        found = problems(system)
        assert {p: found[p]["kind"] for p in found} == {
            "cam1": "move", "cam2": "list", "cam3/c.mp4": "read"}
        assert found["cam1"]["fix"].startswith(f"setfacl -m u:{SERVICE}:rwx {inbox}/cam1 ")
        assert found["cam3/c.mp4"]["fix"].startswith(f"setfacl -m u:{SERVICE}:r ")
        # another file in the folder it cannot move from: held back, and no second line
        (inbox / "cam1" / "a2.mp4").write_bytes(data)
        wait_for(lambda: [e for e in system.log_events("ingest", "seen")
                          if e["path"] == "cam1/a2.mp4"], what="cam1/a2.mp4 seen")
        (inbox / "ok2.mp4").write_bytes(data)  # settles after a2.mp4 did
        wait_for(lambda: "ok2.mp4" in published(system), what="ok2.mp4 published")
        assert sorted(published(system)) == ["ok.mp4", "ok2.mp4"]
        assert metric(system, "videodrop_ingest_permission_errors") == {
            "list": 1, "move": 1, "read": 1}
        assert metric(system, "videodrop_ingest_blocked_paths") == {"": 3}

        # the writer fixes its modes: everything is taken, without waiting for a rescan
        os.chown(inbox / "cam1", 0, service.pw_gid)  # the service's group...
        (inbox / "cam1").chmod(0o2775)  # ...may write
        (inbox / "cam2").chmod(0o777)
        (inbox / "cam3" / "c.mp4").chmod(0o644)
        taken = {"cam1/a.mp4", "cam1/a2.mp4", "cam2/b.mp4", "cam3/c.mp4"}
        wait_for(lambda: taken <= set(published(system)), timeout=90,
                 what=f"{sorted(taken)} published once fixed")
        fixed = {e["path"] for e in system.log_events("ingest", "inbox permission problem fixed")}
        assert fixed == {"cam1", "cam2", "cam3/c.mp4"}
        # cam2 could not be watched when it was made: it is now
        (inbox / "cam2" / "b2.mp4").write_bytes(data)
        wait_for(lambda: "cam2/b2.mp4" in published(system), timeout=30,
                 what="a new file in the folder fixed published (watched now)")
        assert metric(system, "videodrop_ingest_blocked_paths") == {"": 0}
        assert len(problems(system)) == 3
    finally:
        system.stop()


# --- the documented set-up: a writers' group, setgid, a default ACL or umask 002 ---------

WRITERS = 40_000  # stands in for the group videodrop-writers (no account is made)
WRITER = 40_001  # a writer (an SFTP user, an NVR's FTP account), in that group only


def as_writer(inbox: Path, umask: int, script: str) -> None:
    """``script`` run by ``sh`` in the inbox as the writer, with ``umask``."""
    done = subprocess.run(["sh", "-c", script], cwd=inbox, user=WRITER, group=WRITERS,
                          extra_groups=[], umask=umask, capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("case", [
    (True, 0o022, True),  # install.sh's inbox: its default ACL wins over the writer's umask
    (False, 0o002, True),  # no ACLs: a writer with umask 002
    (False, 0o022, False),  # no ACLs, umask 022: folders 2755, logged with the chmod fix
], ids=["default-acl-umask-022", "umask-002", "umask-022"])
def test_writers_group_setgid_and_default_acl_or_umask(
        case: tuple[bool, int, bool], make_system: Callable[[str], System], workspace: Path,
        samples: Path) -> None:
    acl, umask, taken = case
    system = make_system("inotify")
    inbox = system.inbox
    service = pwd.getpwnam(SERVICE)
    # install.sh: the service owns the inbox, group writers, 2770 (+ its default ACL)
    os.chown(inbox, service.pw_uid, WRITERS)
    inbox.chmod(0o2770)
    if acl:
        setfacl = shutil.which("setfacl")
        if setfacl is None:
            pytest.fail("setfacl not found: apt-get install acl", pytrace=False)
        subprocess.run([setfacl, "-d", "-m", f"g:{service.pw_gid}:r", str(inbox)], check=True)
    clip = workspace / CLIP
    shutil.copyfile(samples / CLIP, clip)
    clip.chmod(0o644)
    try:
        start_ingest_as(system, SERVICE, groups=(WRITERS,))  # the service is in the group
        wait_for(lambda: system.log_events("ingest", "rescan"), what="the ingest watching")
        as_writer(inbox, umask, f"mkdir cam1 && cp {clip} cam1/.x.part && mv cam1/.x.part"
                                f" cam1/x.mp4 && cp {clip} ok.mp4")
        mode = (inbox / "cam1").stat().st_mode & 0o7777
        wait_for(lambda: "ok.mp4" in published(system), what="ok.mp4 published")
        if taken:
            wait_for(lambda: "cam1/x.mp4" in published(system), what="cam1/x.mp4 published")
            assert mode & 0o070 == 0o070, oct(mode)
            assert problems(system) == {}
            return
        assert mode == 0o2755
        wait_for(lambda: problems(system), what="the permission problem")
        [(path, line)] = problems(system).items()
        assert (path, line["kind"]) == ("cam1", "move")
        assert line["fix"].startswith(f"chmod g+rwx {inbox}/cam1 ")
        as_writer(inbox, umask, "chmod g+rwx cam1")  # the fix, by the writer
        wait_for(lambda: "cam1/x.mp4" in published(system), what="cam1/x.mp4 once fixed")
    finally:
        system.stop()
