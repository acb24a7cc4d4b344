"""Several hosts: two hosts (a and b) each run ingest, a prober and derive on an inbox,
a temporary folder, logs, a process group and a network of their own (testbed/hosts.py:
network namespaces where ``unshare --net`` works, else the machine's loopback, as with
``VIDEODROP_TEST_HOSTS_NETWORK=loopback``); a third (c) runs the API on 127.0.0.3. They
share only PostgreSQL, RabbitMQ and the media store (an S3 bucket; the burst also on
a file:// folder every host uses, as NFS would). 200 distinct small clips are split
between the two inboxes while they run:

- every file is ``ready`` exactly once (one row per file, asked of PostgreSQL itself),
  its poster and packet index made, and its bytes (sha256) read back from host c;
- the same when host a's roles are SIGKILLed mid-burst and started again.

Each host has its own probe queue (its own ``VIDEODROP_AMQP_PREFIX`` on the shared
broker): a watch-folder message names a path inside the inbox, which only the ingest's
own host can open (docs/several-hosts.md).

Bounded: clips of 0.4 s at 64x48, derivatives limited to poster and packets; 1.5 to 3
minutes a test on 2 shared cores (docs/several-hosts.md), 600 s at most. Run alone with
``pytest -m hosts``."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.broker import delete_amqp_names
from testbed.hosts import Host, Namespace, loopback_ports, netns_usable
from tests.harness import rows, wait_for

# =loopback: the hosts share the machine's network even where namespaces work
NETWORK_ENV = "VIDEODROP_TEST_HOSTS_NETWORK"
pytestmark = [pytest.mark.hosts, pytest.mark.timeout(600)]
FILES = 200
ROLES = ("ingest", "prober", "derive")
KINDS = ("packets", "poster")  # the cheap ones: one ffmpeg pass each on 4 frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """FILES distinct clips (0.4 s, 64x48, H.264 in MP4; a title of their own makes each
    one's bytes differ) → their sha256. One encode, then one ffmpeg copying it to every
    output."""
    folder = tmp_path_factory.mktemp("host-clips")
    base = folder / "base.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=10:duration=0.4", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(base)], check=True, timeout=60)
    outputs: list[str] = []
    for i in range(FILES):
        outputs += ["-map", "0", "-c", "copy", "-metadata", f"title=clip {i}",
                    str(folder / f"clip-{i:03d}.mp4")]
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(base), *outputs],
                   check=True, timeout=120)
    base.unlink()
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("clip-*.mp4"))}


@pytest.fixture(params=["s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The shared media store's environment: a file:// folder outside every host's own
    folder, or a fresh prefix of the session's S3 bucket."""
    if request.param == "file":
        shared = tmp_path / "shared-store"
        shared.mkdir()
        return {"VIDEODROP_STORAGE_URL": shared.as_uri()}
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return {**server.env(), "VIDEODROP_STORAGE_URL":
            f"s3://{bucket}/hosts-{secrets.token_hex(4)}"}


@pytest.fixture
def hosts(tmp_path: Path, db_url: str, amqp_url: str, broker_prefix: str,
          store: dict[str, str]) -> Iterator[dict[str, Host]]:
    """Hosts a and b (ingest, prober, derive) and c (the API), started."""
    namespaces = netns_usable() and os.environ.get(NETWORK_ENV) != "loopback"
    ports = loopback_ports(db_url, amqp_url, store.get("VIDEODROP_S3_ENDPOINT_URL", ""))
    env = {"VIDEODROP_DERIVE": ",".join(KINDS), "VIDEODROP_RENDITIONS": "off",
           "VIDEODROP_DERIVE_CONCURRENCY": "1"}
    made: dict[str, Host] = {}
    try:
        for name, address, prefix in (("a", "127.0.0.1", "a"), ("b", "127.0.0.2", "b"),
                                      ("c", "127.0.0.3", "a")):  # c's uploads go to a
            network = Namespace(f"{name}{secrets.token_hex(2)}") if namespaces else None
            host = Host(tmp_path / f"host-{name}", db_url, amqp_url,
                        f"{broker_prefix}.{prefix}", extra_env=env, name=name,
                        address=address, store_env=store, network=network)
            made[name] = host
            host.start_network(*ports, api=name == "c")
        for name in ("a", "b"):
            start_roles(made[name], *ROLES)
        start_roles(made["c"], "api")
        yield made
    finally:
        for host in made.values():
            host.stop()
        for prefix in ("a", "b"):
            delete_amqp_names(amqp_url, f"{broker_prefix}.{prefix}")


def start_roles(host: Host, *roles: str) -> None:
    """Start ``roles`` on ``host`` and wait until they serve (the API answers /healthz,
    the consumers are on their queues); a role that exits fails at once, its log shown."""
    for role in roles:
        host.start_role(role)

    def serving() -> bool:
        host.assert_running()
        if "api" in roles and not host.http.get(f"{host.base_url}/healthz", timeout=2).ok:
            return False
        return all(host.consumers(queue) >= 1 for role, queue in
                   (("prober", "probe"), ("derive", "derive")) if role in roles)
    wait_for(serving, timeout=90, interval=0.2, what=f"host {host.name}'s {roles}")


def drop(clips: dict[str, str], into: list[Host], every: float) -> tuple[threading.Thread,
                                                                       dict[str, str]]:
    """Write the clips into the hosts' inboxes in turn from a thread (like cameras);
    returns the thread and {file name: sha256}. Names say the host: ``a-clip-007.mp4``."""
    plan: list[tuple[Path, Path]] = []
    expected: dict[str, str] = {}
    for i, (path, digest) in enumerate(clips.items()):
        host = into[i % len(into)]
        name = f"{host.name}-{Path(path).name}"
        plan.append((Path(path), host.inbox / name))
        expected[name] = digest
    pace = threading.Event()

    def run() -> None:
        for src, dst in plan:
            dst.write_bytes(src.read_bytes())
            pace.wait(every)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, expected


def ready_count(db: str) -> int:
    return int(rows(db, "SELECT count(*) FROM videos WHERE status = 'ready'")[0][0])


def assert_same_outcome(hosts: dict[str, Host], expected: dict[str, str]) -> None:
    """Every file ready exactly once with its own bytes, its derivatives made, read back
    from host c; nothing left in the inboxes or dead-lettered; the hosts' own folders
    hold no media."""
    a, b, c = hosts["a"], hosts["b"], hosts["c"]
    db = c.database_url

    def all_done() -> bool:
        [(videos, pending)] = rows(db, "SELECT count(*), count(*) FILTER (WHERE status NOT IN"
                                       " ('ready', 'failed')) FROM videos")
        [(derivatives, unmade)] = rows(db, "SELECT count(*), count(*) FILTER (WHERE status"
                                           " = 'pending') FROM derivatives")
        return (videos >= len(expected) and pending == 0
                and derivatives >= len(KINDS) * len(expected) and unmade == 0)
    wait_for(all_done, timeout=300, interval=0.5,
             what=f"{len(expected)} files ready with their derivatives")

    recorded = rows(db, "SELECT original_filename, count(*), min(status), max(status),"
                        " min(sha256) FROM videos GROUP BY original_filename")
    assert len(recorded) == len(expected), "files missing or unexpected files recorded"
    by_name = {name: (count, low, high, digest) for name, count, low, high, digest in recorded}
    assert set(by_name) == set(expected)
    twice = sorted(n for n, (count, *_) in by_name.items() if count != 1)
    assert not twice, f"recorded more than once: {twice}"
    not_ready = sorted(n for n, (_, low, high, _) in by_name.items() if low != high
                       or low != "ready")
    assert not not_ready, f"not ready: {not_ready}"
    assert {n: d for n, (*_, d) in by_name.items()} == expected, "sha256 recorded differs"
    made = rows(db, "SELECT kind, status, count(*) FROM derivatives GROUP BY kind, status")
    assert sorted(made) == sorted((k, "ready", len(expected)) for k in KINDS)

    listed = c.videos()
    assert len(listed) == len(expected)
    for item in listed:
        links = item["api_links"]
        got = c.http.get(links["download_url"], timeout=10)
        assert got.status_code == 200, (item["original_filename"], got.text)
        assert hashlib.sha256(got.content).hexdigest() == expected[item["original_filename"]]
        for link in ("poster_url", "packets_url"):
            derived = c.http.get(links[link], timeout=10)
            assert derived.status_code == 200 and derived.content, (link, derived.text)
        assert links["download_url"].startswith(c.base_url)

    for host in (a, b):
        assert host.inbox_entries() == [], f"host {host.name}'s inbox is not empty"
        assert not [p for p in host.media_root.rglob("*") if p.is_file()], (
            f"host {host.name} kept media outside the shared store")
        for queue in ("probe.dead", "derive.dead"):
            assert host.queue_counts(queue)[0] == 0, f"{host.prefix}.{queue} holds messages"


def probed_by(host: Host) -> set[str]:
    """Names of the files whose probe summary line is in host's prober log."""
    return {str(e["path"]) for e in host.log_events("prober", "probe")
            if e.get("status") == "ready"}


@pytest.mark.parametrize("store", ["s3", "file"], indirect=True)
def test_two_hosts_share_a_burst(hosts, clips):
    a, b, c = hosts["a"], hosts["b"], hosts["c"]
    if a.network is not None and c.network is not None:  # networks of their own
        assert c.network.answers(c.port) and not a.network.answers(c.port)
    writer, expected = drop(clips, [a, b], every=0.02)
    writer.join()
    assert_same_outcome(hosts, expected)
    # each host's probers took its own inbox's files, and only those
    for host in (a, b):  # a summary line is written after the commit the outcome saw
        mine = {n for n in expected if n.startswith(f"{host.name}-")}
        wait_for(lambda h=host, m=mine: probed_by(h) >= m, timeout=15,
                 what=f"host {host.name}'s probe summaries")
        assert probed_by(host) == mine


def test_a_host_killed_mid_burst_and_restarted(hosts, clips):
    a, b = hosts["a"], hosts["b"]
    writer, expected = drop(clips, [a, b], every=0.05)  # ~10 s of arrivals
    db = a.database_url
    wait_for(lambda: ready_count(db) >= 20, timeout=120, what="the first files to be ready")
    at_kill, arriving = ready_count(db), writer.is_alive()
    a.kill_roles()  # SIGKILL to host a's process group: ingest, prober, derive, ffmpeg
    assert at_kill < FILES and arriving, "the burst was over before host a was killed"
    waiting = len(a.inbox_entries())
    writer.join()
    assert len(a.inbox_entries()) > waiting, "no file arrived at host a while it was down"
    start_roles(a, *ROLES)
    assert_same_outcome(hosts, expected)
    print(f"host a killed with {at_kill}/{FILES} ready, {waiting} file(s) in its inbox")

