"""api/worker.py's reading of a request's start (no sockets): when a request has arrived
whole, when its body is the thread's to read, when the head is too large."""

from __future__ import annotations

import pytest

from api.worker import HELD_BODY, MAX_HEAD, Arrived, assess

HEAD = b"POST /login HTTP/1.1\r\nHost: x\r\n"


def long_head(size: int) -> bytes:
    """A complete request head of exactly ``size`` bytes."""
    start, end = b"GET / HTTP/1.1\r\nX: ", b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize(("data", "arrived"), [
    (b"", Arrived.NOT_YET),
    (b"GET / HTTP/1.1\r\nHost: x\r\n", Arrived.NOT_YET),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Arrived.WHOLE),
    (b"GET / HTTP/1.0\r\n\r\n", Arrived.WHOLE),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next", Arrived.WHOLE),  # pipelined
    (HEAD + b"Content-Length: 10\r\n\r\ntoken=", Arrived.NOT_YET),
    (HEAD + b"content-length: 10\r\n\r\ntoken=abcd", Arrived.WHOLE),
    (HEAD + b"Content-Length: 0\r\n\r\n", Arrived.WHOLE),
    (HEAD + b"Content-Length: %d\r\n\r\n" % HELD_BODY, Arrived.NOT_YET),
    (HEAD + b"Content-Length: %d\r\n\r\n" % (HELD_BODY + 1), Arrived.STREAMED),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", Arrived.STREAMED),
    # for gunicorn's parser to refuse (400), not for us to wait on
    (HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", Arrived.WHOLE),
    (HEAD + b"Content-Length: -1\r\n\r\n", Arrived.WHOLE),
    (HEAD + b"Content-Length: 1e3\r\n\r\n", Arrived.WHOLE),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD, Arrived.TOO_LARGE),
    # the limit counts the head up to its blank line, whether or not the end has arrived
    (long_head(MAX_HEAD), Arrived.WHOLE),
    (long_head(MAX_HEAD + 1), Arrived.TOO_LARGE),
    (long_head(90 * 1024), Arrived.TOO_LARGE),
    (long_head(MAX_HEAD)[:-1], Arrived.NOT_YET),  # its last byte still to come
    (long_head(MAX_HEAD + 1)[:MAX_HEAD], Arrived.TOO_LARGE),  # no end in MAX_HEAD bytes
])
def test_assess(data: bytes, arrived: Arrived) -> None:
    assert assess(data).arrived is arrived


def test_expect_continue_only_for_a_held_body_not_sent_yet() -> None:
    expect = HEAD + b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n"
    assert assess(expect).expects_continue
    assert not assess(expect + b"token").expects_continue  # the body is coming anyway
    assert not assess(expect.replace(b"HTTP/1.1", b"HTTP/1.0")).expects_continue
    big = HEAD + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (HELD_BODY + 1)
    assert assess(big).arrived is Arrived.STREAMED  # gunicorn answers 100 itself


class Lines:
    """A logger that keeps what it is given."""

    def __init__(self) -> None:
        self.lines: list[dict[str, object]] = []

    def info(self, event: str, **fields: object) -> None:
        self.lines.append({"event": event, **fields})


def test_refusals_are_counted_always_and_logged_once_a_window_per_client_and_reason():
    from api.ops.refusals import Refusals
    from videodrop import metrics

    def count(reason: str) -> float:
        value = metrics.API.get_sample_value("videodrop_http_refused_total",
                                             {"reason": reason})
        return value or 0.0

    log, now = Lines(), [100.0]
    refusals = Refusals(log, clock=lambda: now[0], window=60)
    before = count("client_busy"), count("head_too_large")
    token = "Ab3x" + "k" * 39
    head = f"GET /stream/{token}/a.mp4?x=1 HTTP/1.1\r\nHost: x\r\n".encode()
    for _ in range(3):
        refusals.refused("client_busy", "203.0.113.7", head, 81)
    refusals.refused("client_busy", "198.51.100.1", head, 81)
    refusals.refused("head_too_large", "203.0.113.7", b"BREW /pot HTTP/1.1\r\nX: aaaa", 0)
    assert [(ln["reason"], ln["client"]) for ln in log.lines] == [
        ("client_busy", "203.0.113.7"), ("client_busy", "198.51.100.1"),
        ("head_too_large", "203.0.113.7")]
    first = log.lines[0]
    assert first["status"] == 503 and first["method"] == "GET" and first["not_logged"] == 0
    assert str(first["path"]).startswith("/stream/Ab3x") and token not in str(first["path"])
    assert str(first["path"]).endswith("/a.mp4")  # no query
    assert log.lines[2]["method"] == "OTHER" and log.lines[2]["path"] == "/pot"
    now[0] += 61  # a new window: one line, saying what the last one left out
    refusals.refused("client_busy", "203.0.113.7", head, 81)
    assert log.lines[-1]["not_logged"] == 2 and len(log.lines) == 4
    assert (count("client_busy"), count("head_too_large")) == (before[0] + 5, before[1] + 1)
