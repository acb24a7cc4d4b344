"""A RabbitMQ cluster of throwaway nodes on this machine (deploy/devstack's
ThrowawayRabbitMQ, never the machine's rabbit@localhost): what the broker-cluster test
runs videodrop on, and stops a node of."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.devstack import DevstackError, ThrowawayRabbitMQ
from testbed.waits import wait_for

if TYPE_CHECKING:
    from typing import Self


class ThrowawayCluster:
    """``size`` nodes under ``base_dir/node<i>``, each with its own node name, AMQP and
    distribution ports, sharing one Erlang cookie; nodes 2… join node 1's cluster
    (``stop_app``, ``join_cluster``, ``start_app``). A context manager: started on entry,
    every node stopped on exit. Raises :class:`DevstackError` when a node cannot start or
    join."""

    def __init__(self, base_dir: Path, size: int = 3) -> None:
        self.base_dir = base_dir
        self.nodes = [ThrowawayRabbitMQ(base_dir / f"node{i}") for i in range(1, size + 1)]

    @property
    def url(self) -> str:
        """VIDEODROP_AMQP_URL for the cluster: every node's URL, comma-separated."""
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 120) -> Self:
        cookie = secrets.token_hex(20).upper()
        for node in self.nodes:
            node.base_dir.mkdir(parents=True, exist_ok=True)
            path = node.base_dir / ".erlang.cookie"
            if not path.exists():  # ThrowawayRabbitMQ keeps a cookie that is there
                path.write_text(cookie)
                path.chmod(0o400)
        self._start_all(timeout)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            for args in (("stop_app",), ("join_cluster", first.node), ("start_app",)):
                self._ctl(node, *args)
        wait_for(lambda: len(self.running_nodes(first)) == len(self.nodes), timeout=timeout,
                 what=f"{len(self.nodes)} running nodes in the cluster")
        return self

    def _start_all(self, timeout: float) -> None:
        """Start the nodes at once (each takes seconds of mostly waiting)."""
        errors: list[BaseException] = []

        def start(node: ThrowawayRabbitMQ) -> None:
            try:
                node.start(timeout=timeout)
            except BaseException as exc:  # re-raised below, on the caller's thread
                errors.append(exc)
        threads = [threading.Thread(target=start, args=(node,)) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.stop()
            raise errors[0]

    def _ctl(self, node: ThrowawayRabbitMQ, *args: str) -> str:
        result = node.ctl(*args)
        if result.returncode != 0:
            raise DevstackError(f"rabbitmqctl -n {node.node} {' '.join(args)} failed"
                                f" (exit {result.returncode}): {result.stdout}{result.stderr}")
        return result.stdout

    def _json(self, via: ThrowawayRabbitMQ, *args: str) -> Any:
        return json.loads(self._ctl(via, *args, "--formatter", "json", "--quiet"))

    def running_nodes(self, via: ThrowawayRabbitMQ | None = None) -> list[str]:
        """The names of the cluster's running nodes, as ``via`` (default: a running node
        of this cluster) sees them."""
        status = self._json(via or self.a_running_node(), "cluster_status")
        return list(status.get("running_nodes", []))

    def a_running_node(self) -> ThrowawayRabbitMQ:
        for node in self.nodes:
            if node.running():
                return node
        raise DevstackError("no node of the cluster runs")

    def quorum_queue(self, queue: str, vhost: str = "/") -> tuple[str, list[str]]:
        """(leader, members): the node names of ``queue``'s leader and of its replicas,
        asked of a running node of this cluster."""
        rows = self._json(self.a_running_node(), "list_queues", "-p", vhost, "name", "type",
                          "leader", "members")
        for row in rows:
            if row["name"] == queue:
                if row["type"] != "quorum":
                    raise DevstackError(f"{queue} is a {row['type']} queue, not a quorum queue")
                return str(row["leader"]), sorted(str(m) for m in row["members"])
        raise DevstackError(f"no queue {queue} in vhost {vhost}")

    def node_named(self, name: str) -> ThrowawayRabbitMQ:
        return next(node for node in self.nodes if node.node == name)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
