"""The example records in README.md and docs/ are what videodrop really says of the sample
they name: their file_info is compared with a real probe of that sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prober.probe import probe_file
from tests.harness import REPO

FILE_INFO = re.compile(r'"file_info": (\{.*?\})', re.S)
SAMPLE_NAME = re.compile(r'"filename": "videos/[^"]*/([^"/]+)"')


def examples() -> list[tuple[str, dict]]:
    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for block in FILE_INFO.findall(doc.read_text(encoding="utf-8")):
            info = json.loads(re.sub(r"\s+", " ", block))
            found.append((f"{doc.name}:{SAMPLE_NAME.search(block).group(1)}", info))
    return found


@pytest.mark.parametrize(("where", "info"), examples(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_an_example_record_matches_a_real_probe(where: str, info: dict, samples: Path) -> None:
    sample = samples / where.split(":", 1)[1]
    metadata = probe_file(sample, version="docs").metadata
    for key in ("format", "size", "duration", "resolution", "fps", "codec", "audio_codec"):
        assert info[key] == metadata[key], (where, key, info[key], metadata[key])


def test_the_examples_are_found() -> None:
    assert {w.split(":")[0] for w, _ in examples()} >= {"README.md", "api.md"}
