"""videodrop.logs: the line every logger writes (structlog's chain, orjson, bytes), the
batched writer over the timed buffer, api.ops.requestlog.RequestLog over it; no whole token
in a line (redaction)."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import falcon
import falcon.testing
import pytest
import structlog

from api.ops.requestlog import RequestLog
from videodrop import logs
from videodrop.tokens import redact_tokens


class Lines:
    """What a process configured by ``logs.configure(batched=True)`` writes on stdout."""

    def __init__(self, stream: io.BytesIO, batched: logs.BatchedLines) -> None:
        self.stream, self.batched = stream, batched

    def written(self) -> list[str]:
        """The lines written so far (without a flush)."""
        return self.stream.getvalue().decode().splitlines()

    def flushed(self) -> list[str]:
        self.batched.flush()
        return self.written()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``configure(fmt=..., level=...)``: logs.configure(role="api", batched=True) writing
    to a buffer (a writer that never writes on its own: only flushes and warnings)."""
    stream = io.BytesIO()
    batched = logs.BatchedLines(stream, ticker=None)
    monkeypatch.setattr(logs, "_batched", batched)

    def configure(fmt: str = "json", level: str = "info") -> Lines:
        logs.configure(role="api", fmt=fmt, level=level, batched=True)
        return Lines(stream, batched)

    yield configure
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")


def test_the_request_line(configure: Any) -> None:
    """The journal format of the API's line per request: the call's keywords in order,
    then ``event``, the bound context, role, level, logger and an ISO UTC timestamp."""
    lines = configure()
    structlog.contextvars.bind_contextvars(request_id="5f2c9e0d1a7b3c44", token="Ab3xYz",
                                           video_id=42)
    before = datetime.now(UTC)
    logs.get("api").info("request", method="GET", route="/api/video/{token}/", status=200,
                         bytes=312, ms=0.07)
    after = datetime.now(UTC)
    [line] = lines.flushed()
    got = json.loads(line)
    keys = list(got)
    assert keys[:6] == ["method", "route", "status", "bytes", "ms", "event"]
    assert set(keys[6:10]) == {"role", "request_id", "token", "video_id"}  # context order
    assert keys[10:] == ["level", "logger", "timestamp"]
    assert got == {"method": "GET", "route": "/api/video/{token}/", "status": 200,
                   "bytes": 312, "ms": 0.07, "event": "request", "role": "api",
                   "request_id": "5f2c9e0d1a7b3c44", "token": "Ab3xYz", "video_id": 42,
                   "level": "info", "logger": "api", "timestamp": got["timestamp"]}
    assert ISO_UTC.fullmatch(got["timestamp"])
    stamp = datetime.fromisoformat(got["timestamp"].replace("Z", "+00:00"))
    assert before.replace(microsecond=0) <= stamp <= after


class Custom:
    def __structlog__(self) -> str:
        return "custom!"


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, {}),
    ({"method": "HEAD", "route": "/stream/{token}/", "status": 404, "bytes": None, "ms": None},
     None),
    ({"token": "given-here-wins", "text": "ünïcode \"quoted\"\n", "ratio": 1e-7},
     None),
    ({"big": 2**70}, None),  # over 64 bits: orjson refuses it, json writes it
    ({"level": "fake", "logger": "shadow", "flag": True, "items": [1, "two", None],
      "nested": {"a": [0.5]}}, {"level": "info", "logger": "api", "flag": True,
                                "items": [1, "two", None], "nested": {"a": [0.5]}}),
    ({"custom": Custom(), "opaque": Opaque(), "when": datetime(2024, 5, 1, tzinfo=UTC)},
     {"custom": "custom!", "opaque": "<opaque>", "when": "2024-05-01T00:00:00+00:00"}),
    ({"logger_name": "renamed"}, {"logger": "renamed"}),
])
def test_any_info_line_carries_its_keywords_and_context(
        configure: Any, kw: dict[str, Any], expected: dict[str, Any] | None) -> None:
    lines = configure()
    structlog.contextvars.bind_contextvars(request_id="r1", token="t1", gone="x")
    structlog.contextvars.unbind_contextvars("gone")  # bound once, not any more
    logs.get("api").info("something", **kw)
    [line] = lines.flushed()
    got = json.loads(line)
    for key, value in (kw if expected is None else expected).items():
        assert got[key] == value, key
    assert got["event"] == "something" and got["role"] == "api"
    assert got["request_id"] == "r1" and "gone" not in got
    assert got["token"] == kw.get("token", "t1")  # the call's keyword wins over the context
    assert ISO_UTC.fullmatch(got["timestamp"])


def test_lines_are_rendered_by_orjson_to_bytes(configure: Any) -> None:
    """structlog's performance guide: orjson's compact JSON, bytes to the final logger."""
    lines = configure()
    logs.get("api").info("request", status=200)
    [line] = lines.flushed()
    assert line.startswith('{"status":200,"event":"request",')


def test_lines_from_a_new_thread_carry_the_role_too(configure: Any) -> None:
    """A gunicorn gthread worker answers in threads that start with an empty context."""
    lines = configure()
    worker = threading.Thread(target=lambda: logs.get("api").info("request", status=200))
    worker.start()
    worker.join()
    [line] = lines.flushed()
    assert json.loads(line)["role"] == "api"


def test_only_the_context_of_the_call_counts(configure: Any) -> None:
    lines = configure()
    structlog.contextvars.bind_contextvars(request_id="during")
    logs.get("api").info("request")
    structlog.contextvars.bind_contextvars(request_id="after", video_id=7)
    [line] = lines.flushed()
    assert json.loads(line)["request_id"] == "during" and "video_id" not in json.loads(line)


def test_info_lines_wait_for_a_flush_and_warnings_go_at_once_after_them(
        configure: Any) -> None:
    lines = configure()
    log = logs.get("api")
    log.info("one")
    log.debug("two")  # filtered out at info
    log.info("three")
    assert lines.written() == []
    log.warning("four")
    assert [json.loads(line)["event"] for line in lines.written()] == ["one", "three", "four"]


def test_the_ticker_writes_collected_lines() -> None:
    stream = io.BytesIO()
    ticker = logs.batching.Ticker(interval=3600)
    batched = logs.BatchedLines(stream, ticker=ticker)
    batched.later(b'{"event":"one"}')
    batched.later(b'{"event":"two"}')
    assert stream.getvalue() == b""
    ticker.tick()  # what the ticker thread does every BATCH_SECONDS, and at exit
    assert stream.getvalue() == b'{"event":"one"}\n{"event":"two"}\n'
    ticker.tick()
    assert stream.getvalue().count(b"\n") == 2  # nothing written twice


def test_console_other_levels_and_exceptions(configure: Any) -> None:
    lines = configure(fmt="console")
    logs.get("api").info("request", status=200)
    [line] = lines.flushed()
    assert "request" in line and "status" in line and not line.startswith("{")

    lines = configure(level="warning")
    logs.get("api").info("request", status=200)
    assert lines.flushed() == [line]  # nothing more

    lines = configure()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logs.get("api").info("request", exc_info=True)
    [_, failed] = lines.flushed()
    assert "RuntimeError: boom" in json.loads(failed)["exception"]


def test_a_value_that_cannot_be_rendered_costs_its_line_only(configure: Any) -> None:
    lines = configure()
    loop: list[Any] = []
    loop.append(loop)
    logs.get("api").info("looped", value=loop)
    logs.get("api").info("fine")
    failed, fine = (json.loads(line) for line in lines.flushed())
    assert failed["event"] == "looped" and failed["level"] == "error"
    assert failed["logger"] == "api" and "not rendered" in failed["error"]
    assert fine["event"] == "fine"


def test_context_keys_bind_and_unbind_structlogs_context() -> None:
    request_id = logs.context_variable("request_id")
    try:
        request_id.set("abc")
        assert structlog.contextvars.get_contextvars()["request_id"] == "abc"
        structlog.contextvars.bind_contextvars(request_id="def")
        request_id.set("ghi")
        assert structlog.contextvars.get_contextvars()["request_id"] == "ghi"
        request_id.unbind()
        assert "request_id" not in structlog.contextvars.get_contextvars()
        request_id.unbind()  # unbound already: fine
    finally:
        structlog.contextvars.clear_contextvars()


# --- RequestLog over the batched lines -----------------------------------------------------------

class Thing:
    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        structlog.contextvars.bind_contextvars(token=token[:6], video_id=9)
        logs.get("api.things").info("looked up")
        if token == "missing":
            raise falcon.HTTPNotFound()
        resp.media = {"ok": True}


def request_log_client(mode: str) -> falcon.testing.TestClient:
    app = falcon.App(middleware=[RequestLog(logs.get("api"), mode)])
    app.add_route("/things/{token}/", Thing())
    return falcon.testing.TestClient(app)


def test_request_lines_carry_what_the_request_bound(configure: Any) -> None:
    lines = configure()
    client = request_log_client("all")
    resp = client.simulate_get("/things/secret-token/", headers={"X-Request-ID": "req-1"})
    assert resp.headers["X-Request-ID"] == "req-1"
    looked_up, request = (json.loads(line) for line in lines.flushed())
    assert looked_up["event"] == "looked up" and looked_up["request_id"] == "req-1"
    assert request["event"] == "request" and request["request_id"] == "req-1"
    assert request["route"] == "/things/{token}/" and request["status"] == 200
    assert request["token"] == "secret" and request["video_id"] == 9
    assert "secret-token" not in json.dumps(request)
    # ...and nothing of it stays bound once the request is over.
    assert structlog.contextvars.get_contextvars() == {"role": "api"}

    client.simulate_get("/things/other/")
    [_, _, _, second] = (json.loads(line) for line in lines.flushed())
    assert len(second["request_id"]) == 16 and second["request_id"] != "req-1"


@pytest.mark.parametrize(("mode", "logged"), [("all", [200, 404]), ("errors", [404]),
                                              ("off", [])])
def test_request_log_modes(configure: Any, mode: str, logged: list[int]) -> None:
    lines = configure()
    client = request_log_client(mode)
    client.simulate_get("/things/present/")
    client.simulate_get("/things/missing/")
    found = [json.loads(line) for line in lines.flushed()]
    assert [e["status"] for e in found if e["event"] == "request"] == logged


def test_request_lines_over_the_rate_are_summed_up_once_a_second(configure: Any) -> None:
    lines = configure()
    now = [100.0]
    log = RequestLog(logs.get("api"), "all", rate=3, clock=lambda: now[0])
    app = falcon.App(middleware=[log])
    app.add_route("/things/{token}/", Thing())
    client = falcon.testing.TestClient(app)
    for _ in range(5):
        client.simulate_get("/things/present/")
    client.simulate_get("/things/missing/")  # an error: always logged
    found = [json.loads(line) for line in lines.flushed()]
    assert [(e["event"], e["status"]) for e in found if e["event"] == "request"] == [
        ("request", 200), ("request", 200), ("request", 200), ("request", 404)]
    assert not [e for e in found if e["event"] == "requests not logged"]

    now[0] = 101.5
    assert log.budget is not None
    log.budget.roll()  # what the log writer thread does every 0.2 s
    [summary] = [json.loads(line) for line in lines.flushed()[len(found):]
                 if "requests not logged" in line]
    assert summary["requests"] == 2 and summary["seconds"] == 1
    assert summary["by_route"] == {"GET /things/{token}/ 200": 2}
    log.budget.roll()  # nothing more to say
    client.simulate_get("/things/present/")  # a new second: lines again
    assert json.loads(lines.flushed()[-1])["event"] == "request"

    # A summary made by the request that starts a new second is not about that request.
    for _ in range(3):
        client.simulate_get("/things/present/")
    now[0] = 102.5
    before = len(lines.flushed())
    client.simulate_get("/things/present/", headers={"X-Request-ID": "starts-a-second"})
    summary, request = (e for e in map(json.loads, lines.flushed()[before:])
                        if e["event"] != "looked up")
    assert summary["event"] == "requests not logged" and summary["requests"] == 1
    assert summary["role"] == "api"
    assert not {"request_id", "token", "video_id"} & set(summary)
    assert request["request_id"] == "starts-a-second" and request["video_id"] == 9


TOKEN = "Jx0iAbQ8w2-RkT_7mZpL4vN9cY1eH6sGdU3oF5aKq0B"  # 43 characters, as tokens are


def test_redact_tokens_cuts_every_token_shaped_run() -> None:
    assert len(TOKEN) == 43
    assert redact_tokens(f"/stream/{TOKEN}/video.mp4") == "/stream/Jx0iAb…/video.mp4"
    assert redact_tokens(f"'/srv/links/Jx/{TOKEN}.mp4' -> {TOKEN}x") == (
        "'/srv/links/Jx/Jx0iAb….mp4' -> Jx0iAb…")  # longer runs too: they hold a token
    assert redact_tokens(TOKEN[:42]) == TOKEN[:42]  # shorter: not a token of ours
    assert redact_tokens("file_20261125_151201_8c1f0a2b9d3e") == "file_20261125_151201_8c1f0a2b9d3e"


def test_redact_tokens_cuts_query_and_percent_encoded_tokens() -> None:
    encoded = "".join(f"%{ord(ch):02x}" for ch in TOKEN)
    assert redact_tokens(f"/api/video/{TOKEN}/?t={TOKEN}&u={TOKEN}") == (
        "/api/video/Jx0iAb…/?t=Jx0iAb…&u=Jx0iAb…")
    assert redact_tokens(f"/api/video/{encoded}/") == "/api/video/%4a%78…/"
    assert redact_tokens(f"/a/{TOKEN[:20]}%{ord(TOKEN[20]):02X}{TOKEN[21:]}") == "/a/Jx0iAb…"
    assert redact_tokens(f"/a/{encoded.replace('%', '%25')}") == "/a/%254a%…"  # encoded twice
    assert redact_tokens("/a/" + "%e4%bd%a0" * 5) == "/a/" + "%e4%bd%a0" * 5  # 15 units


def test_structlog_lines_are_redacted_but_inbox_paths_kept(configure: Any) -> None:
    lines = configure()
    try:
        raise OSError(2, "No such file or directory", f"/srv/links/Jx/{TOKEN}.mp4")
    except OSError as exc:
        logs.get("api").warning(f"link {TOKEN} not removed", error=str(exc), exc_info=True,
                                path=f"cam1/{TOKEN}.mp4")
    [line] = lines.flushed()
    parsed = json.loads(line)
    assert TOKEN not in parsed["event"] + parsed["error"] + parsed["exception"]
    assert "Jx0iAb…" in parsed["error"] and "Jx0iAb…" in parsed["exception"]
    assert parsed["path"] == f"cam1/{TOKEN}.mp4"  # a writer's file name, as it is


def test_stdlib_records_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.addFilter(logs.RedactTokens())
    try:
        try:
            raise ValueError(f"bad /stream/{TOKEN}/")
        except ValueError:
            logger.exception("Error handling request %s %s", "GET", f"/stream/{TOKEN}/")
        logger.warning("Invalid request from ip=%s: %r", "127.0.0.1", f"GET /api/video/{TOKEN}/")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert TOKEN not in written
    assert "GET /stream/Jx0iAb…/" in written and "ValueError: bad /stream/Jx0iAb…/" in written
    assert "GET /api/video/Jx0iAb…/" in written


def test_info_lines_of_the_busy_path_are_redacted_too(configure: Any) -> None:
    """The request line goes through the same chain as every line: a token in any of its
    texts (a path no route matched, an error) is cut."""
    lines = configure()
    logs.get("api").info("request", route=f"/stream/{TOKEN}/video.mp4", status=404,
                         error=f"no link {TOKEN}", path=f"cam1/{TOKEN}.mp4")
    [line] = lines.flushed()
    parsed = json.loads(line)
    assert TOKEN not in parsed["route"] + parsed["error"]
    assert parsed["route"] == "/stream/Jx0iAb…/video.mp4"
    assert parsed["path"] == f"cam1/{TOKEN}.mp4"
