"""The systemd units: `systemd-analyze verify` is clean, `systemd-analyze security` rates
each unit's exposure at most 2.0, the settings the roles rely on are there, the sandbox's
MemoryDenyWriteExecute does not break ffprobe or Python, deploy/install.sh stages a whole
installation, and each role speaks the notify protocol (wiring pending).

systemd need not be running (PID 1 here is not systemd): both analyses work on files.
`verify` wants the ExecStart binary to exist, so it runs on copies whose ExecStart points
at a stand-in executable.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO, System
from tests.integration.test_health_metrics import NotifySocket

UNITS = REPO / "systemd"
SERVICES = ["videodrop-ingest.service", "videodrop-prober@.service", "videodrop-derive@.service",
            "videodrop-api.service", "videodrop-retention.service"]
ALL_UNITS = [*SERVICES, "videodrop.target"]
EXEC = "/opt/videodrop/venv/bin/videodrop"
MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd", pytrace=False)
    return found


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}: unit files repeat keys, configparser can't."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The units with ExecStart pointing at an executable that exists."""
    folder = tmp_path_factory.mktemp("units")
    stand_in = folder / "bin" / "videodrop"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    for name in ALL_UNITS:
        text = (UNITS / name).read_text()
        (folder / name).write_text(text.replace(EXEC, str(stand_in)))
    return folder


# --- static checks ----------------------------------------------------------------------------

def test_units_verify_clean(unit_copies: Path) -> None:
    paths = [str(unit_copies / n) for n in ALL_UNITS] + [
        str(unit_copies / "videodrop-prober@1.service"),
        str(unit_copies / "videodrop-derive@1.service")]
    done = subprocess.run([systemd_analyze(), "verify", *paths], capture_output=True,
                          text=True, timeout=60)
    # verify exits 0 on mere warnings (an unknown key is "ignoring"): demand silence.
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), \
        done.stdout + done.stderr


def test_verify_would_catch_a_mistake(unit_copies: Path, tmp_path: Path) -> None:
    """The check above is not vacuous: a misspelt key makes verify speak."""
    text = (unit_copies / "videodrop-ingest.service").read_text()
    bad = tmp_path / "videodrop-ingest.service"
    bad.write_text(text.replace("ProtectHome=yes", "ProtectHomes=yes"))
    done = subprocess.run([systemd_analyze(), "verify", str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert "ProtectHomes" in done.stdout + done.stderr


@pytest.mark.parametrize("unit", [*SERVICES, "videodrop-prober@1.service",
                                  "videodrop-derive@1.service"])
def test_security_exposure_is_low(unit: str) -> None:
    done = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager",
                           str(UNITS / unit)], capture_output=True, text=True, timeout=60,
                          cwd=UNITS)
    out = done.stdout + done.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert m is not None, out
    exposure = float(m.group(1))
    print(f"{unit}: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, out


@pytest.mark.parametrize("unit", SERVICES)
def test_service_settings(unit: str) -> None:
    service = parse_unit(UNITS / unit)["Service"]

    def one(key: str) -> str:
        assert key in service, f"{unit}: {key}= missing"
        return service[key][-1]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert int(one("WatchdogSec")) > 0
    assert one("EnvironmentFile") == "/etc/videodrop/videodrop.env"
    assert one("User") == one("Group") == "videodrop"
    assert one("ExecStart").startswith(EXEC + " ")
    assert "78" in one("RestartPreventExitStatus").split()
    assert one("Restart") == "on-failure"
    assert one("KillMode") == "mixed"  # SIGTERM to the main process; it stops its children
    assert int(one("TimeoutStopSec")) >= 20
    assert one("ProtectSystem") == "strict"
    assert one("ReadWritePaths").startswith("/srv/videodrop")
    assert one("MemoryDenyWriteExecute") == "yes"
    assert one("CapabilityBoundingSet") == ""
    assert one("RestrictAddressFamilies").split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert not any(k.startswith("IPAddress") for k in service), \
        "IP filtering would break a remote database or broker: leave it to a drop-in"
    install = parse_unit(UNITS / unit)["Install"]
    assert install["WantedBy"] == ["videodrop.target"]


SIZE_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def size_of(value: str) -> int:
    """A systemd byte size (``1536M``, ``2G``, bytes)."""
    number, unit = re.fullmatch(r"(\d+)([KMGT]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * SIZE_UNITS.get(unit, 1)


# Each role's caps: what the unit may hold at most (and its tasks: threads and children).
CAPS = {"videodrop-ingest.service": (1024**3, 128),
        "videodrop-prober@.service": (4 * 1024**3, 1024),
        "videodrop-derive@.service": (4 * 1024**3, 1024),
        "videodrop-api.service": (2 * 1024**3, 512),
        "videodrop-retention.service": (512 * 1024**2, 64)}


@pytest.mark.parametrize("unit", SERVICES)
def test_the_role_is_capped(unit: str) -> None:
    """MemoryMax= and TasksMax= bound each role; MemoryHigh= throttles it before the
    kernel kills in it. (Enforced by the kernel's cgroups under systemd, which does not run
    here: verify above checks the syntax, this the values.)"""
    service = parse_unit(UNITS / unit)["Service"]
    memory_max, tasks_max = CAPS[unit]
    assert size_of(service["MemoryMax"][-1]) == memory_max
    assert size_of(service["MemoryHigh"][-1]) < memory_max
    assert int(service["TasksMax"][-1]) == tasks_max


def test_the_api_has_descriptors_for_its_connections() -> None:
    """gunicorn's worker_connections (1000) per worker, waiting ones included
    (api/worker.py), plus the database pool and open files."""
    service = parse_unit(UNITS / "videodrop-api.service")["Service"]
    assert int(service["LimitNOFILE"][-1]) >= 2 * 1000 + 1024


def test_the_api_may_lower_its_frame_decoders_priority() -> None:
    """The frame decoders run under ``nice`` (api/frames/decoders.py): setpriority, which
    the deny list of @resources removes, is allowed again after it (systemd applies the
    filter lines in order); without it ``nice`` would only warn and leave them at 0."""
    filters = parse_unit(UNITS / "videodrop-api.service")["Service"]["SystemCallFilter"]
    denied = next(n for n, f in enumerate(filters) if f.startswith("~") and "@resources" in f)
    assert "setpriority" in " ".join(filters[denied + 1:]).split()


@pytest.mark.parametrize(("unit", "ports"), [("videodrop-ingest.service", "9361-9369"),
                                             ("videodrop-prober@.service", "9370-9399"),
                                             ("videodrop-derive@.service", "9400-9419"),
                                             ("videodrop-retention.service", "9420")])
def test_ingest_and_probers_listen_on_their_metrics_ports_only(unit: str, ports: str) -> None:
    """No port but the metrics server's can be bound in these units (ffprobe included);
    the range allowed is the one the unit gives VIDEODROP_METRICS_BIND."""
    service = parse_unit(UNITS / unit)["Service"]
    assert service["SocketBindDeny"] == ["any"]
    assert service["SocketBindAllow"] == [f"tcp:{ports}"]
    bind = next(e for e in service["Environment"] if e.startswith("VIDEODROP_METRICS_BIND="))
    assert bind.endswith(f":{ports}")


def test_security_analysis_sees_the_address_families(unit_copies: Path) -> None:
    """What systemd itself makes of RestrictAddressFamilies= for the prober: no packet,
    netlink or other sockets; local and Internet ones remain (database, broker)."""
    done = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager",
                           str(UNITS / "videodrop-prober@.service")], capture_output=True,
                          text=True, timeout=60, cwd=UNITS)
    out = done.stdout
    for denied in ("AF_PACKET", "AF_NETLINK", "…"):
        assert re.search(rf"✓ RestrictAddressFamilies=~{re.escape(denied)}\s", out), out
    for kept in ("AF_UNIX", r"AF_\(INET\|INET6\)"):
        assert re.search(rf"✗ RestrictAddressFamilies=~{kept}\s", out), out


def test_prober_stop_timeout_leaves_room_for_a_probe() -> None:
    service = parse_unit(UNITS / "videodrop-prober@.service")["Service"]
    default_probe_timeout = 30
    assert int(service["TimeoutStopSec"][-1]) > 2 * default_probe_timeout


def test_metrics_ports_of_ingest_and_probers_do_not_overlap() -> None:
    def ports(unit: str) -> set[int]:
        envs = parse_unit(UNITS / unit)["Service"]["Environment"]
        bind = next(e.split("=", 1)[1] for e in envs if e.startswith("VIDEODROP_METRICS_BIND="))
        first, _, last = bind.rsplit(":", 1)[1].partition("-")
        return set(range(int(first), int(last or first) + 1))

    ingest, prober = ports("videodrop-ingest.service"), ports("videodrop-prober@.service")
    derive, retention = ports("videodrop-derive@.service"), ports("videodrop-retention.service")
    assert ingest and len(prober) >= 8 and not ingest & prober
    assert derive and not derive & (ingest | prober)
    assert retention and not retention & (ingest | prober | derive)


def test_retention_runs_its_passes_in_one_place() -> None:
    """One unit, not a template: the passes run in one place (the advisory lock keeps a
    second host's out); periodic, and the interval is one the role accepts."""
    service = parse_unit(UNITS / "videodrop-retention.service")["Service"]
    command = service["ExecStart"][-1].split()
    assert command[:3] == [EXEC, "retention", "--every"]
    assert 0 < float(command[3]) <= 604800
    # the watchdog is pinged while it waits (at most every 5 s) and between batches
    assert int(service["WatchdogSec"][-1]) > 5


# --- MemoryDenyWriteExecute, tried for real with the kernel's own MDWE -------------------------

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1

# Sets the kernel's MDWE on itself, then becomes the command (MDWE survives exec).
MDWE_RUNNER = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_MDWE): errno {{ctypes.get_errno()}}")
os.execv(sys.argv[1], sys.argv[1:])
"""


def mdwe_supported() -> bool:
    probe = subprocess.run([sys.executable, "-c", MDWE_RUNNER, "/bin/true"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def under_mdwe() -> Any:
    """Run a command with write-and-execute memory refused (inherited across exec), as
    MemoryDenyWriteExecute=yes refuses it. Kernels before 6.3 lack PR_SET_MDWE."""
    if not mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")

    def run(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", MDWE_RUNNER, *argv], capture_output=True,
                              text=True, timeout=120, **kwargs)
    return run


def test_mdwe_is_really_enforced(under_mdwe: Any) -> None:
    done = under_mdwe(sys.executable, "-c",
                      "import mmap; mmap.mmap(-1, 4096, prot=7)")  # READ|WRITE|EXEC
    assert done.returncode != 0 and "PermissionError" in done.stderr


def test_ffmpeg_of_the_derive_role_runs_under_mdwe(under_mdwe: Any, samples: Path,
                                                   tmp_path: Path) -> None:
    """The derive unit has MemoryDenyWriteExecute=yes too: its ffmpeg decodes and encodes
    a poster with write-and-execute memory refused."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is missing: apt-get install ffmpeg"
    for sample in ("bbb_chapters.mp4", "video-h265.mp4", "bbb_input.webm", "tiny_av1.mp4"):
        done = under_mdwe(ffmpeg, "-v", "error", "-i", str(samples / sample), "-frames:v", "1",
                          "-vf", "scale=320:-2,format=yuvj420p", "-f", "mjpeg", "-y",
                          str(tmp_path / "p.jpg"))
        assert done.returncode == 0, f"{sample}: {done.stderr}"


def test_ffprobe_and_videodrop_probe_run_under_mdwe(under_mdwe: Any, samples: Path) -> None:
    """ffprobe says the same about every sample with write-and-execute memory refused as
    without (broken samples included: the same error)."""
    ffprobe = shutil.which("ffprobe")
    assert ffprobe, "ffprobe is missing: apt-get install ffmpeg"
    files = sorted(p for p in samples.iterdir() if p.is_file() and p.suffix != ".md")
    assert files
    for sample in files:
        argv = [ffprobe, "-v", "error", "-print_format", "json", "-show_format",
                "-show_streams", str(sample)]
        free = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        done = under_mdwe(*argv)
        assert (done.returncode, done.stdout) == (free.returncode, free.stdout), \
            f"{sample.name}: {done.stderr}"
    done = under_mdwe(sys.executable, "-m", "videodrop", "probe", str(samples /
                                                                      "bbb_chapters.mp4"),
                      cwd=REPO)
    assert done.returncode == 0 and '"status": "ready"' in done.stdout, done.stderr


def test_the_roles_import_and_watch_under_mdwe(under_mdwe: Any, tmp_path: Path) -> None:
    script = f"""
import queue, pathlib
import api.app, api.gunicorn_conf, ingest.daemon, prober.worker, derive.main, gunicorn.app.wsgiapp
from ingest import watcher
events = queue.Queue()
observer = watcher.start_observer(pathlib.Path({str(tmp_path)!r}), "inotify", events,
                                  poll_interval=0.5)
pathlib.Path({str(tmp_path / "a.mp4")!r}).write_bytes(b"x")
print(events.get(timeout=10)[0])
observer.stop()
"""
    done = under_mdwe(sys.executable, "-c", script, cwd=REPO,
                      env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


# --- deploy/install.sh --------------------------------------------------------------------------

def install(dest: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "DESTDIR": str(dest), "PIP_INSTALL_ARGS": "--no-deps", **env}
    return subprocess.run(["bash", str(REPO / "deploy" / "install.sh")], env=full,
                          capture_output=True, text=True, timeout=300)


def test_install_stages_everything_and_is_idempotent(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    first = install(dest)
    assert first.returncode == 0, first.stderr
    venv_bin = dest / "opt/videodrop/venv/bin"
    assert os.access(venv_bin / "videodrop", os.X_OK)
    shown = subprocess.run([str(venv_bin / "python"), "-c",
                            "import videodrop.notify, api.gunicorn_conf as _, importlib.metadata"
                            " as m; print(m.version('videodrop'))"],
                           capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert shown.returncode == 0 and shown.stdout.strip(), shown.stderr

    for folder, mode in (("inbox", 0o2770), ("media", 0o2750), ("stream-links", 0o2750)):
        assert (dest / "srv/videodrop" / folder).stat().st_mode & 0o7777 == mode
    envfile = dest / "etc/videodrop/videodrop.env"
    assert envfile.stat().st_mode & 0o777 == 0o640
    token = re.search(r"^VIDEODROP_ADMIN_TOKEN=(\S{40,})$", envfile.read_text(), re.M)
    assert token, envfile.read_text()
    for name in ALL_UNITS:
        assert (dest / "etc/systemd/system" / name).read_text() == (UNITS / name).read_text()

    again = install(dest)
    assert again.returncode == 0, again.stderr
    assert "keeping /etc/videodrop/videodrop.env" in again.stderr
    assert "installed" not in again.stderr  # units unchanged: nothing rewritten
    assert envfile.read_text().count(token.group(1)) == 1


def test_install_writes_other_locations_into_the_units(tmp_path: Path,
                                                       unit_copies: Path) -> None:
    dest = tmp_path / "root"
    done = install(dest, PREFIX="/usr/local/videodrop", SRV="/data/videos",
                   ETC="/usr/local/etc/videodrop")
    assert done.returncode == 0, done.stderr
    unit = (dest / "etc/systemd/system/videodrop-prober@.service").read_text()
    assert "ExecStart=/usr/local/videodrop/venv/bin/videodrop prober" in unit
    assert "ReadWritePaths=/data/videos\n" in unit
    assert "EnvironmentFile=/usr/local/etc/videodrop/videodrop.env" in unit
    env = (dest / "usr/local/etc/videodrop/videodrop.env").read_text()
    assert "VIDEODROP_INBOX=/data/videos/inbox" in env
    assert (dest / "data/videos/inbox").is_dir()


def test_install_refuses_to_touch_the_system_unprivileged(tmp_path: Path) -> None:
    if os.getuid() != 0:
        done = subprocess.run(["bash", str(REPO / "deploy/install.sh")], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "DESTDIR": ""})
        assert done.returncode != 0 and "run as root" in done.stderr
        return
    nobody = shutil.which("setpriv")
    assert nobody, "setpriv (util-linux) is missing"
    # nobody may not read the checkout (a clone in root's 0700 home, or in a mktemp -d
    # folder): the script runs from a copy in a folder every user can read.
    readable = Path(tempfile.mkdtemp(prefix="vdinstall-"))
    try:
        readable.chmod(0o755)
        (readable / "deploy").mkdir(mode=0o755)
        script = readable / "deploy" / "install.sh"
        shutil.copyfile(REPO / "deploy/install.sh", script)
        script.chmod(0o755)
        done = subprocess.run([nobody, "--reuid=65534", "--regid=65534", "--clear-groups",
                               "bash", str(script)], capture_output=True, cwd=readable,
                              text=True, timeout=60, env={**os.environ, "DESTDIR": ""})
    finally:
        shutil.rmtree(readable)
    assert done.returncode != 0 and "run as root" in done.stderr, done.stderr


# --- the notify protocol from the real roles (wiring pending) ----------------------------------

@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    s = NotifySocket()
    yield s
    s.close()


@pytest.mark.parametrize("role", ["ingest", "prober", "derive", "api", "retention"])
def test_role_tells_systemd_it_is_ready(role: str, make_system: Any,
                                        notify_socket: NotifySocket, tmp_path: Path) -> None:
    rules = tmp_path / "retention.toml"
    rules.write_text('[global]\nmax_age = "30d"\n')
    system: System = make_system(NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="2000000",
                                 VIDEODROP_RETENTION_FILE=str(rules))
    # the unit's interval: the watchdog is pinged while the role waits for its next pass
    system.start_role(role, *(["--every", "300"] if role == "retention" else []))
    notify_socket.wait_for("READY=1", timeout=30)
    notify_socket.wait_for("WATCHDOG=1", timeout=5)
    system.kill(role, signal.SIGTERM)
    notify_socket.wait_for("STOPPING=1", timeout=5)
