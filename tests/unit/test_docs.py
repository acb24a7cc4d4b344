"""The documents stay true to the code: docs/configuration.md lists exactly the settings
the code reads, the README stays short and its pointers lead somewhere, and the figures
the manuals quote from the code (the number of migrations) are the code's."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from videodrop.settings import PREFIX, Settings

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CONFIGURATION = DOCS / "configuration.md"
NAME = re.compile(r"\bVIDEODROP_[A-Z0-9_]*[A-Z0-9]\b")
# Where the code is: the roles and the core (they read Settings), and the tools around
# them (install.sh, the units, the tests, the benchmarks), whose own variables are listed
# under "Not settings of the service".
CODE = ("videodrop", "ingest", "prober", "api", "deploy", "systemd", "tests", "bench")
SUFFIXES = {".py", ".sh", ".service", ".target", ".example", ".conf"}
# Names the code spells that are no variable: prefixes built upon.
NOT_VARIABLES = {"VIDEODROP_TEST"}


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else len(text)]


def table_names(text: str) -> list[str]:
    """The variables in the first column of the table rows of ``text``."""
    names: list[str] = []
    for row in re.findall(r"^\| ([^|]+) \|", text, flags=re.M):
        names += NAME.findall(row)
    return names


def names_in_code() -> set[str]:
    found: set[str] = set()
    for top in CODE:
        for path in (REPO / top).rglob("*"):
            if path.is_file() and (path.suffix in SUFFIXES or path.name == "Makefile") \
                    and path != Path(__file__).resolve():
                found |= set(NAME.findall(path.read_text(errors="replace")))
    return found - NOT_VARIABLES


def test_the_settings_table_is_exactly_the_settings_fields() -> None:
    listed = table_names(section(CONFIGURATION.read_text(), "Settings of the service"))
    assert len(listed) == len(set(listed)), "a setting is listed twice"
    expected = {PREFIX + f.name.upper() for f in fields(Settings)}
    assert set(listed) - expected == set(), "listed but not read by Settings"
    assert expected - set(listed) == set(), "read by Settings but not in docs/configuration.md"


def test_every_variable_the_code_names_is_documented() -> None:
    documented = set(table_names(CONFIGURATION.read_text()))
    undocumented = names_in_code() - documented
    assert undocumented == set(), f"named in the code, missing from {CONFIGURATION.name}"


def test_every_documented_variable_is_named_in_the_code() -> None:
    read = names_in_code() | {PREFIX + f.name.upper() for f in fields(Settings)}
    stale = set(table_names(CONFIGURATION.read_text())) - read
    assert stale == set(), "documented but read nowhere"


def test_the_readme_is_short() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("doc", ["README.md", *(f"docs/{p.name}" for p in DOCS.glob("*.md"))])
def test_relative_links_lead_to_files_and_headings(doc: str) -> None:
    path = REPO / doc
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.is_file(), f"{doc} links to {target}: no such file"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{doc} links to {target}: no such heading"


def test_the_health_example_counts_the_migrations() -> None:
    migrations = len(list((REPO / "videodrop" / "migrations").glob("[0-9]*.sql")))
    quoted = re.findall(r"schema up to date \((\d+) migrations\)",
                        (DOCS / "operations.md").read_text())
    assert quoted == [str(migrations)]


def test_the_command_table_lists_every_sub_command() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    plugged = set(project["entry-points"]["videodrop.commands"])
    builtin = re.search(r"builtin: dict\[str, Command\] = \{([^}]*)\}",
                        (REPO / "videodrop" / "cli.py").read_text())
    assert builtin is not None, "videodrop/cli.py no longer spells its built-in commands so"
    commands = plugged | set(re.findall(r'"(\w+)":', builtin.group(1)))
    table = section((DOCS / "operations.md").read_text(), "Command line")
    listed = set(re.findall(r"^\| `videodrop (\w+)", table, flags=re.M))
    assert listed == commands
