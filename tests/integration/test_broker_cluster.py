"""The broker cluster: the whole system (api, ingest, a prober) on a 3-node RabbitMQ
cluster this test starts itself (testbed/cluster.py: three throwaway nodes, never the
machine's broker), VIDEODROP_AMQP_URL naming all three. While 120 small files arrive, the
node that leads the probe queue is stopped: every file ends `ready` exactly once, none is
lost or dead-lettered, the inbox ends empty and the burst finishes.

Bounded: 600 s at most (pytest-timeout); its duration on 2 cores is in
docs/several-hosts.md. Run alone with ``pytest -m cluster``. A cluster
that cannot start fails the test (never a skip)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import devstack
from testbed.cluster import ThrowawayCluster
from tests.harness import System, rows, wait_for
from tests.integration.test_crash_suite import stored_originals
from tests.integration.test_ingest_faults import assert_exactly_once, drop_files
from videodrop.storage import FileStore

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
FILES = 120


@pytest.fixture
def rabbit_cluster(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    """Three clustered throwaway nodes; a node that cannot start or join fails the test."""
    if devstack.find_rabbitmq_server() is None:
        pytest.fail(f"no rabbitmq-server for the cluster test: {devstack.RABBITMQ_INSTALL}",
                    pytrace=False)
    cluster = ThrowawayCluster(tmp_path / "cluster", size=3)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def small_clip(tmp_path: Path) -> Path:
    """A one-second 64x48 H.264 clip made by ffmpeg (a few kB)."""
    clip = tmp_path / "small.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=10:duration=1", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=60)
    return clip


def connections(cluster: ThrowawayCluster) -> list[tuple[int, str]]:
    """(node's AMQP port, ``connection_name``) of each videodrop client connection, as the
    cluster lists them: the port tells the node (each listens on its own)."""
    listed = cluster.a_running_node().ctl("list_connections", "port", "client_properties",
                                          "--formatter", "json", "--quiet")
    assert listed.returncode == 0, listed.stderr
    found = []
    for conn in json.loads(listed.stdout):
        # rabbitmqctl's JSON gives client properties as [name, type, value] triples
        name = str({p[0]: p[2] for p in conn["client_properties"]}.get("connection_name", ""))
        if name.startswith("videodrop-"):
            found.append((int(conn["port"]), name))
    return found


def test_stop_the_probe_queues_leader_during_a_burst(make_system, rabbit_cluster, small_clip):
    cluster = rabbit_cluster
    # the prober first: its consumers declare the queues, so the probe queue's leader is on
    # the node of a prober connection (RabbitMQ puts it where the declaring client is)
    system: System = make_system(amqp=cluster.url).start("prober", "ingest", "api")
    everyone = sorted(node.node for node in cluster.nodes)
    for queue in ("probe", "derive"):
        _, members = cluster.quorum_queue(f"{system.prefix}.{queue}")
        assert members == everyone, f"the {queue} queue is not replicated on every node"
    probe = f"{system.prefix}.probe"
    leader, _ = cluster.quorum_queue(probe)
    consumers = system.queue_counts("probe")[1]
    names = [f"burst-{i:03d}.mp4" for i in range(FILES)]
    writer = drop_files(system.inbox, small_clip, names, every=0.1)  # ~12 s of arrivals

    def ready() -> int:
        return int(rows(system.database_url,
                        "SELECT count(*) FROM videos WHERE status = 'ready'")[0][0])

    wait_for(lambda: ready() >= 10, timeout=120, what="the first files to be ready")
    port = cluster.node_named(leader).port
    on_leader = sorted(name for at, name in connections(cluster) if at == port)
    at_stop, arriving = ready(), writer.is_alive()
    cluster.node_named(leader).stop()
    assert at_stop < FILES and arriving, "the burst was over before the node stopped"
    held = [n for n in on_leader if n.startswith(("videodrop-prober", "videodrop-ingest"))]
    assert held, f"no prober or ingest connection was on {leader}: nothing had to fail over"
    wait_for(lambda: set(held) <= {name for _, name in connections(cluster)}, timeout=60,
             what=f"{held} connected again, to another node")
    system.wait_consumers(consumers)  # every consumer of the prober back on the queue

    new_leader = wait_for(lambda: (found := cluster.quorum_queue(probe)[0])
                          != leader and found, timeout=60, what="a new leader of the probe queue")
    writer.join()
    assert_exactly_once(system, names, timeout=300)
    [(count, distinct)] = rows(system.database_url,
                               "SELECT count(*), count(DISTINCT origin_path) FROM videos")
    assert count == distinct == FILES
    recorded = {r[0] for r in rows(system.database_url, "SELECT stored_path FROM videos")}
    assert set(stored_originals(FileStore(system.media_root))) == recorded
    assert system.queue_counts("probe")[0] == 0
    assert system.queue_counts("probe.dead")[0] == 0, "files were dead-lettered"
    assert new_leader in everyone and new_leader != leader
    reconnected = [e for e in system.log_events("prober") + system.log_events("ingest")
                   if str(e.get("event")).startswith("broker unavailable")]
    assert len(reconnected) >= 1
    print(f"stopped {leader} with {at_stop}/{FILES} ready; videodrop connections on it:"
          f" {on_leader}; reconnects logged: {len(reconnected)}; new leader {new_leader}")

