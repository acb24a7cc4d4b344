"""The OpenAPI document of the frame, clip and packet routes against the resources
themselves: every query parameter a route takes is listed (and nothing else), and the
refusals a client must handle are documented with the headers they carry."""

from __future__ import annotations

import pytest

from api.frames.clip import Clip
from api.frames.endpoints import Frame, ManyFrames
from api.frames.packets import ByteRange, Packets
from api.openapi import document

ROUTES = {"frame/": Frame, "frames/": ManyFrames, "clip/": Clip, "packets/": Packets,
          "range/": ByteRange}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_parameter_taken_is_listed(route):
    path = document()["paths"][f"/api/video/{{token}}/{route}"]
    for method in ("get", "head"):
        params = path[method]["parameters"]
        assert {p["name"] for p in params if p["in"] == "path"} == {"token"}
        assert {p["name"] for p in params if p["in"] == "query"} == set(ROUTES[route].allowed)
        required = {p["name"] for p in params if p.get("required")}
        assert required >= {"token"} | ({"t"} if route.startswith("frame") else set()) | (
            {"start", "end"} if route in ("clip/", "range/") else set())


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_not_ready_and_expired_are_documented(route):
    """409 not_ready carries Retry-After while the video is processing (every route), 410
    expired when a retention rule removed its files (every route: they all check the
    video first)."""
    responses = document()["paths"][f"/api/video/{{token}}/{route}"]["get"]["responses"]
    assert "Retry-After" in responses["409"].get("headers", {}), route
    assert "not_ready" in str(responses["409"]["content"])
    assert "410" in responses and "404" in responses and "400" in responses
