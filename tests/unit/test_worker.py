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
