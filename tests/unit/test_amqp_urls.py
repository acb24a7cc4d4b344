"""VIDEODROP_AMQP_URL with one URL or several (the nodes of a cluster)."""

import pytest

from videodrop import broker
from videodrop.brokerurls import redact, split_amqp_urls
from videodrop.settings import Settings, SettingsError

NODES = ("amqp://vd:pw1@10.0.0.1:5672/videodrop", "amqp://vd:pw1@10.0.0.2:5673/videodrop",
         "amqps://vd:pw1@mq3.example/videodrop?heartbeat=20")


def test_one_url_is_a_list_of_one():
    s = Settings.from_env({"VIDEODROP_AMQP_URL": NODES[0]})
    assert s.amqp_urls == (NODES[0],)


def test_several_urls_keep_their_order_and_ignore_blanks():
    s = Settings.from_env({"VIDEODROP_AMQP_URL": f" {NODES[0]} ,{NODES[1]},\t{NODES[2]} "})
    assert s.amqp_urls == NODES


@pytest.mark.parametrize(("raw", "says"), [
    ("", "is empty"),
    (f"{NODES[0]},", "(URL 2 of 2) is empty"),
    (f"{NODES[0]},,{NODES[1]}", "(URL 2 of 3) is empty"),
    ("http://vd:pw1@10.0.0.1/", "must start with amqp:// or amqps://"),
    (f"{NODES[0]},10.0.0.2:5672", "URL 2 of 2"),
    ("amqp://vd:pw1@/vhost", "names no host"),
    ("amqp://vd:pw1@10.0.0.1:99999/", "out of range"),
    ("amqp://vd:pw1@10.0.0.1:port/", "integer"),
    ("amqp://vd:pw1@10.0.0.1:0/", "1-65535"),
    (f"{NODES[0]},{NODES[0]}", "the same URL twice"),
])
def test_a_bad_url_names_the_setting_and_hides_the_password(raw: str, says: str):
    with pytest.raises(SettingsError) as caught:
        Settings(amqp_url=raw).validate()
    message = str(caught.value)
    assert "VIDEODROP_AMQP_URL" in message
    assert says in message
    assert "pw1" not in message


def test_redact_hides_only_the_password():
    assert redact("amqp://vd:s3cret@h:5672/v") == "amqp://vd:***@h:5672/v"
    assert redact("amqp://h:5672/v") == "amqp://h:5672/v"


def test_a_comma_in_a_password_is_written_percent_encoded():
    assert split_amqp_urls("amqp://vd:a%2Cb@h1/,amqp://vd:a%2Cb@h2/") == (
        "amqp://vd:a%2Cb@h1/", "amqp://vd:a%2Cb@h2/")


def test_connections_start_at_successive_nodes_and_try_the_others():
    """pika gets every node, each once; successive connections start one node further."""
    s = Settings(amqp_url=",".join(NODES))
    firsts = []
    for _ in range(len(NODES)):
        params = broker.parameters(s, name="t")
        assert sorted(p.host for p in params) == ["10.0.0.1", "10.0.0.2", "mq3.example"]
        assert all(p.connection_attempts == 1 for p in params)
        firsts.append(params[0].host)
        order = [p.host for p in params]
        i = order.index("10.0.0.1")
        assert order[i:] + order[:i] == ["10.0.0.1", "10.0.0.2", "mq3.example"]  # a rotation
    assert sorted(firsts) == ["10.0.0.1", "10.0.0.2", "mq3.example"]


def test_each_url_keeps_its_own_heartbeat_and_port():
    params = {p.host: p for p in broker.parameters(Settings(amqp_url=",".join(NODES)), name="t")}
    assert params["mq3.example"].heartbeat == 20
    assert params["10.0.0.1"].heartbeat == broker.HEARTBEAT
    assert params["10.0.0.2"].port == 5673
    assert params["mq3.example"].port == 5671  # amqps
