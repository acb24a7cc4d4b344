"""videodrop/formats.py is the one list of formats: what the rest is held to."""

from __future__ import annotations

import re

from tests.harness import REPO
from videodrop import formats


def test_every_content_type_is_one_container():
    types = [c.content_type for c in formats.CONTAINERS]
    assert len(set(types)) == len(types)  # a stream link's extension names its type
    assert len(formats.BY_EXTENSION) == sum(len(c.extensions) for c in formats.CONTAINERS)


def test_the_issue_s_formats_are_in_the_table():
    for ext, ctype in {"ts": "video/mp2t", "mts": "video/mp2t", "m2ts": "video/mp2t",
                       "3gp": "video/3gpp", "mp4": "video/mp4"}.items():
        assert formats.BY_EXTENSION[ext].content_type == ctype
    assert formats.BY_KEY["h264"].extensions == ()  # raw streams: by content only


def test_nginx_serves_every_container_with_its_content_type():
    """deploy/nginx.conf's stream location: a link per container key, mapped to its type."""
    site = (REPO / "deploy" / "nginx.conf").read_text()
    location = site[site.index('location ~ "^/stream/'):]
    location = location[:location.index("\n    }\n")]
    tried = re.findall(r"/\$vd_shard/\$vd_token\.(\w+)", location)
    assert tried == [c.key for c in formats.CONTAINERS]
    types = dict(re.findall(r"^\s+(\S+/\S+) (\w+);$", location, re.M))
    assert types == {c.content_type: c.key for c in formats.CONTAINERS}
