"""The error codes are one list: docs/api.md's table, the OpenAPI document and the catalog's
descriptions all hold exactly the codes of videodrop.errorcodes.ErrorCode."""

from __future__ import annotations

import re
from pathlib import Path

from api.openapi import SCHEMAS
from videodrop.errorcodes import DESCRIPTIONS, ErrorCode

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_code_is_described_once() -> None:
    assert set(DESCRIPTIONS) == set(ErrorCode)
    assert len({code.value for code in ErrorCode}) == len(ErrorCode)


def test_the_api_doc_table_lists_every_code() -> None:
    text = API_DOC.read_text()
    table = text[text.index("| --- |", text.index("## Error codes")):]
    table = table[: table.index("\n\n")]
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.M)
    assert listed == [code.value for code in ErrorCode]


def test_the_openapi_document_lists_every_code() -> None:
    for schema in ("Record", "Metadata"):
        enum = SCHEMAS[schema]["properties"]["error_code"]["enum"]
        assert enum == [*(code.value for code in ErrorCode), None]
    assert "error_code" in SCHEMAS["Record"]["required"]
