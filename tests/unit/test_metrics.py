"""videodrop.metrics (definitions, the ingest/prober server, counts kept in memory and
flushed) and api.ops.metrics (the /metrics resource and the request middleware) in one process;
the multiprocess mode under gunicorn is tested in tests/integration/test_health_metrics.py."""

from __future__ import annotations

import random
import socket
import urllib.request
from collections.abc import Iterator

import falcon
import falcon.testing
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from api.ops.metrics import PENDING, UNMATCHED, Metrics, RequestMetrics
from videodrop import metrics
from videodrop.errors import ConfigurationError


def families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{family name: {sorted labels of a sample (with its name): value}}."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        samples = out.setdefault(fam.name, {})
        for s in fam.samples:
            samples[(("__name__", s.name), *sorted(s.labels.items()))] = s.value
    return out


def value(registry: object, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return 0.0 if got is None else float(got)


# --- the bind setting ----------------------------------------------------------------------

@pytest.mark.parametrize(("bind", "host", "ports"), [
    ("127.0.0.1:9361", "127.0.0.1", [9361]),
    ("127.0.0.1:9362-9364", "127.0.0.1", [9362, 9363, 9364]),
    (":9361", "0.0.0.0", [9361]),
    ("[::1]:9361", "::1", [9361]),
    ("localhost:9361", "localhost", [9361]),
])
def test_parse_bind(bind: str, host: str, ports: list[int]) -> None:
    assert metrics.parse_bind(bind) == (host, ports)


@pytest.mark.parametrize("bind", ["9361", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000",
                                  "127.0.0.1:9400-9300", "127.0.0.1:1-5000", "::1:9361", ""])
def test_parse_bind_refuses_nonsense(bind: str) -> None:
    with pytest.raises(ConfigurationError, match="VIDEODROP_METRICS_BIND"):
        metrics.parse_bind(bind)


# --- the ingest/prober server --------------------------------------------------------------

def free_ports(n: int) -> int:
    """The first of ``n`` consecutive ports that are free right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = int(s.getsockname()[1])
        if first + n > 65535:
            continue
        try:
            holders = []
            for port in range(first, first + n):
                h = socket.socket()
                holders.append(h)
                h.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for h in holders:
                h.close()
    raise AssertionError("no run of free ports")


@pytest.fixture
def servers() -> Iterator[list[metrics.MetricsServer]]:
    started: list[metrics.MetricsServer] = []
    yield started
    for server in started:
        server.close()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return str(resp.read().decode())


def test_ingest_server_shows_ingest_metrics_only(servers: list[metrics.MetricsServer]) -> None:
    port = free_ports(1)
    server = metrics.start_metrics_server(f"127.0.0.1:{port}", "ingest")
    servers.append(server)
    assert server.port == port
    before = value(metrics.INGEST, "videodrop_ingest_files_published_total")
    metrics.FILES_PUBLISHED.inc()
    metrics.INBOX_BACKLOG.set(7)

    found = families(scrape(server.url))
    key = (("__name__", "videodrop_ingest_files_published_total"),)
    assert found["videodrop_ingest_files_published"][key] == before + 1
    assert found["videodrop_ingest_inbox_backlog"][(("__name__",
                                                      "videodrop_ingest_inbox_backlog"),)] == 7
    for name in ("videodrop_ingest_files_seen", "videodrop_ingest_files_settled",
                 "videodrop_ingest_files_refused", "videodrop_ingest_publish_retries"):
        assert name in found
    assert "python_info" in found  # the default registry's platform metrics come along
    assert not [n for n in found if n.startswith(("videodrop_prober", "videodrop_http"))]


def test_prober_server_shows_prober_metrics(servers: list[metrics.MetricsServer]) -> None:
    port = free_ports(1)
    servers.append(server := metrics.start_metrics_server(f"127.0.0.1:{port}", "prober"))
    before = value(metrics.PROBER, "videodrop_prober_probes_total", outcome="failed")
    metrics.PROBES.labels(outcome="failed").inc()
    metrics.PROBE_SECONDS.observe(0.3)
    metrics.REDELIVERIES.inc()
    metrics.DEAD_LETTERS.inc()

    found = families(scrape(server.url))
    key = (("__name__", "videodrop_prober_probes_total"), ("outcome", "failed"))
    assert found["videodrop_prober_probes"][key] == before + 1
    assert "videodrop_prober_probe_seconds" in found
    assert "videodrop_prober_redeliveries" in found
    assert "videodrop_prober_dead_letters" in found
    assert not [n for n in found if n.startswith(("videodrop_ingest", "videodrop_http"))]


def test_server_takes_the_next_free_port_of_a_range(
        servers: list[metrics.MetricsServer]) -> None:
    first = free_ports(3)
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", first))
        busy.listen()
        servers.append(a := metrics.start_metrics_server(f"127.0.0.1:{first}-{first + 2}",
                                                         "prober"))
        servers.append(b := metrics.start_metrics_server(f"127.0.0.1:{first}-{first + 2}",
                                                         "prober"))
        assert (a.port, b.port) == (first + 1, first + 2)
        with pytest.raises(ConfigurationError, match="cannot listen"):
            metrics.start_metrics_server(f"127.0.0.1:{first}-{first + 2}", "prober")


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        metrics.exposition_registry("scheduler")


# --- the API's resource and middleware (one process) ---------------------------------------

class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = {"hello": name}

    def on_head(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.content_length = 1000


class Blob:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_stream(iter([b"x" * 4096]), 4096)
        resp.status = falcon.HTTP_206


class Quiet:
    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_204


@pytest.fixture
def client() -> falcon.testing.TestClient:
    app = falcon.App(middleware=[RequestMetrics()])
    app.add_route("/hello/{name}/", Hello())
    app.add_route("/blob", Blob())
    app.add_route("/quiet", Quiet())
    app.add_route("/metrics", Metrics(None))
    return falcon.testing.TestClient(app)


def test_requests_are_counted_by_route_template(client: falcon.testing.TestClient) -> None:
    route = "/hello/{name}/"
    reqs = ("videodrop_http_requests_total", {"method": "GET", "route": route, "status": "200"})
    count0 = value(metrics.API, reqs[0], **reqs[1])
    bytes0 = value(metrics.API, "videodrop_http_response_bytes_total", route=route)
    secs0 = value(metrics.API, "videodrop_http_request_seconds_count", method="GET", route=route)

    for name in ("a-secret-token-1", "a-secret-token-2"):
        assert client.simulate_get(f"/hello/{name}/").status_code == 200
    body = len(client.simulate_get("/hello/x/").content)

    assert value(metrics.API, reqs[0], **reqs[1]) == count0 + 3
    assert value(metrics.API, "videodrop_http_response_bytes_total", route=route) > bytes0 + body
    assert value(metrics.API, "videodrop_http_request_seconds_count", method="GET",
                 route=route) == secs0 + 3
    text = client.simulate_get("/metrics").text
    assert "a-secret-token" not in text
    assert 'route="/hello/{name}/"' in text


def test_unmatched_head_and_streams(client: falcon.testing.TestClient) -> None:
    nf = {"method": "GET", "route": UNMATCHED, "status": "404"}
    nf0 = value(metrics.API, "videodrop_http_requests_total", **nf)
    client.simulate_get("/no/such/thing/with/a/token")
    assert value(metrics.API, "videodrop_http_requests_total", **nf) == nf0 + 1

    blob0 = value(metrics.API, "videodrop_http_response_bytes_total", route="/blob")
    assert client.simulate_get("/blob").status_code == 206
    assert value(metrics.API, "videodrop_http_response_bytes_total", route="/blob") \
        == blob0 + 4096

    head0 = value(metrics.API, "videodrop_http_response_bytes_total", route="/hello/{name}/")
    client.simulate_head("/hello/x/")
    assert value(metrics.API, "videodrop_http_response_bytes_total", route="/hello/{name}/") \
        == head0  # HEAD sends no body


def test_metrics_resource_serves_the_api_registry(client: falcon.testing.TestClient) -> None:
    client.simulate_get("/hello/y/")
    resp = client.simulate_get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=")
    found = families(resp.text)
    assert "videodrop_http_requests" in found
    assert "videodrop_http_request_seconds" in found
    assert not [n for n in found if n.startswith(("videodrop_ingest", "videodrop_prober"))]


def test_family_names_of_the_api_registry() -> None:
    assert metrics.family_names(metrics.API) == {
        "videodrop_http_requests", "videodrop_http_response_bytes",
        "videodrop_http_request_seconds", "videodrop_api_token_lookups",
        "videodrop_http_refused"}


# --- counts kept in memory and written in batches ----------------------------------------

def test_observe_all_writes_what_observe_one_by_one_writes() -> None:
    """The one private hook into prometheus_client (metrics.observe_all): it must still
    find the internals it reads, and write what ``observe`` writes."""
    registry = CollectorRegistry()
    buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    one_by_one = Histogram("one_by_one", "reference", ["route"], buckets=buckets,
                           registry=registry)
    at_once = Histogram("at_once", "batched", ["route"], buckets=buckets, registry=registry)
    rng = random.Random(7)
    amounts = [0.0, 0.005, 0.0050001, 0.01, 1, 10, 10.5, 1e6, *buckets,
               *(rng.expovariate(20) for _ in range(500))]
    for amount in amounts:
        one_by_one.labels("/x").observe(amount)
    assert metrics.histogram_internals(at_once.labels("/x")) is not None, (
        "prometheus_client changed: observe_all falls back to observe one by one")
    metrics.observe_all(at_once.labels("/x"), amounts)

    def samples(name: str) -> dict[tuple[str, str], float]:
        return {(s.name.removeprefix(name), s.labels.get("le", "")): s.value
                for fam in registry.collect() if fam.name == name for s in fam.samples
                if not s.name.endswith("_created")}

    expected, got = samples("one_by_one"), samples("at_once")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert got[("_count", "")] == len(amounts)


class RecordingCounter:
    def __init__(self) -> None:
        self.added: list[tuple[tuple[str, ...], float]] = []

    def labels(self, *values: str) -> RecordingCounter.Series:
        return RecordingCounter.Series(self, values)

    class Series:
        def __init__(self, counter: RecordingCounter, values: tuple[str, ...]) -> None:
            self.counter, self.values = counter, values

        def inc(self, amount: float = 1) -> None:
            self.counter.added.append((self.values, amount))


def test_a_later_counter_adds_up_before_it_writes() -> None:
    counter = RecordingCounter()
    later = metrics.LaterCounter(counter)  # type: ignore[arg-type]
    cache, database = later.labels("cache"), later.labels("database")
    assert later.labels("cache") is cache
    for _ in range(5):
        cache.inc()
    database.inc(2.5)
    with pytest.raises(ValueError, match="only go up"):
        cache.inc(-1)
    metrics.flush()
    by_series: dict[tuple[str, ...], float] = {}
    for values, amount in counter.added:
        by_series[values] = by_series.get(values, 0) + amount
    assert by_series == {("cache",): 5, ("database",): 2.5}
    assert len(counter.added) <= 6  # at most one write per increment, usually one per series
    metrics.flush()
    assert sum(amount for _, amount in counter.added) == 7.5  # nothing written twice


def test_token_lookups_are_read_up_to_date() -> None:
    before = value(metrics.API, "videodrop_api_token_lookups_total", source="cache")
    metrics.TOKEN_LOOKUPS.labels("cache").inc()
    metrics.TOKEN_LOOKUPS.labels(source="cache").inc()
    # Reading the API registry flushes first (FlushOnRead): no wait in this process.
    assert value(metrics.API, "videodrop_api_token_lookups_total", source="cache") == before + 2


def test_requests_wait_in_memory_until_a_flush(client: falcon.testing.TestClient) -> None:
    metrics.flush()
    route = "/hello/{name}/"
    labels = {"method": "GET", "route": route, "status": "200"}
    series = metrics.HTTP_REQUESTS.labels(*labels.values())
    before = series._value.get()
    client.simulate_get("/hello/z/")
    assert series._value.get() in (before, before + 1)  # + 1 if the flush thread ran
    metrics.flush()
    assert not PENDING
    assert series._value.get() == before + 1


def test_every_series_of_a_request_shows_even_at_zero(client: falcon.testing.TestClient) -> None:
    """As when each request wrote its counters: a route that never sent a byte still has
    its bytes series (at 0), and its histogram."""
    client.simulate_head("/quiet")
    found = families(client.simulate_get("/metrics").text)
    key = (("__name__", "videodrop_http_response_bytes_total"), ("route", "/quiet"))
    assert found["videodrop_http_response_bytes"][key] == 0
    count = (("__name__", "videodrop_http_request_seconds_count"), ("method", "HEAD"),
             ("route", "/quiet"))
    assert found["videodrop_http_request_seconds"][count] >= 1
