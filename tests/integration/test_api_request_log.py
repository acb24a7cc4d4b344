"""The API's line per request (api/ops/requestlog.py, written in batches by videodrop/logs.py),
in each VIDEODROP_REQUEST_LOG mode, read from the API's real output."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
import requests

from tests.harness import wait_for


def request_lines(system) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    found = []
    for line in system.log_text("api").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("event") == "request":
                found.append(event)
    return found


@pytest.mark.parametrize("mode", ["all", "errors"])
def test_request_lines(make_system, mode):
    system = make_system(VIDEODROP_REQUEST_LOG=mode).start("api")
    unknown = "A" * 43
    ok = requests.get(f"{system.base_url}/healthz", headers={"X-Request-ID": "fine-1"},
                      timeout=5)
    missing = requests.get(f"{system.base_url}/api/video/{unknown}/",
                           headers={"X-Request-ID": "gone-1"}, timeout=5)
    assert ok.status_code == 200 and missing.status_code == 404
    lines = wait_for(lambda: [e for e in request_lines(system)
                              if e.get("request_id") == "gone-1"] and request_lines(system),
                     timeout=10, what="the 404's request line")
    [gone] = [e for e in lines if e.get("request_id") == "gone-1"]
    assert gone["route"] == "/api/video/{token}/" and gone["status"] == 404
    assert gone["token"].startswith("AAAAAA") and unknown not in json.dumps(gone)
    assert gone["level"] == "info" and gone["ms"] >= 0
    fine = [e for e in lines if e.get("request_id") == "fine-1"]
    assert len(fine) == (1 if mode == "all" else 0)


def test_routes_are_named_by_their_plain_template(make_system):
    """Falcon's converter syntax (``{video_id:int(min=1, max=…)}``) stays out of the request
    line and the metrics labels: ``/api/videos/{video_id}``."""
    system = make_system().start("api")
    answer = requests.get(f"{system.base_url}/api/videos/424242", headers={
        **system.admin, "X-Request-ID": "plain-1"}, timeout=5)
    assert answer.status_code == 404
    [line] = wait_for(lambda: [e for e in request_lines(system)
                               if e.get("request_id") == "plain-1"],
                      timeout=10, what="the request line")
    assert line["route"] == "/api/videos/{video_id}"
    def labelled() -> str | None:
        text = requests.get(f"{system.base_url}/metrics", timeout=5).text
        return text if 'route="/api/videos/{video_id}"' in text else None

    metrics = wait_for(labelled, timeout=10, what="the route in /metrics")
    assert "int(" not in metrics and ":int" not in metrics
