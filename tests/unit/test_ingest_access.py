"""Permission problems (ingest/access.py) with a stand-in for access(2): logged once per
path, looked at again after growing pauses (never at every tick), at once after a
nudge, and handed back once usable. The real thing, with an unprivileged service user:
tests/integration/test_inbox_permissions.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.access import FIRST_RETRY, LONGEST_RETRY, AccessWatch, fix_for


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **kw: Any) -> None:
        self.lines.append(("warning", event, kw))

    def info(self, event: str, **kw: Any) -> None:
        self.lines.append(("info", event, kw))


class Permissions:
    """What the service may do: (path, kind) pairs denied; counts the looks."""

    def __init__(self) -> None:
        self.denied: set[tuple[Path, str]] = set()
        self.looks = 0

    def __call__(self, path: Path, kind: str) -> bool:
        self.looks += 1
        return (path, kind) not in self.denied


def test_a_folder_without_write_is_logged_once_and_retried_with_backoff(tmp_path: Path) -> None:
    folder = tmp_path / "cam1"
    folder.mkdir()
    perms, log = Permissions(), Log()
    perms.denied.add((folder, "move"))
    watch = AccessWatch(log, str, allowed=perms)
    assert watch.holds(folder / "a.mp4", now=0.0)
    assert watch.holds(folder / "b.mp4", now=0.5)  # same folder: no second line
    [(level, event, fields)] = log.lines
    assert (level, event, fields["kind"]) == ("warning", "inbox permission problem", "move")
    assert "chmod g+rwx" in fields["fix"] or "setfacl -m u:" in fields["fix"]
    # looked at again only when due, each pause twice the last, up to the longest
    looks: list[float] = []
    now = 0.0
    for tick in range(1, 20_000):  # 2000 s in ticks of 0.1 s
        now = tick * 0.1
        before = perms.looks
        assert watch.fixed(now) == []
        if perms.looks > before:
            looks.append(now)
    gaps = [round(b - a, 1) for a, b in zip([0.0, *looks[:-1]], looks, strict=True)]
    assert gaps[0] == FIRST_RETRY
    assert gaps == sorted(gaps) and max(gaps) == LONGEST_RETRY
    assert len(looks) < 20  # not at every tick
    assert len(log.lines) == 1
    assert watch.blocked[folder].wait == LONGEST_RETRY
    perms.denied.clear()
    watch.nudge(folder, now)  # a chmod was seen: look at the next tick
    [fixed] = watch.fixed(now)
    assert fixed.path == folder and fixed.kind == "move"
    assert log.lines[-1][1] == "inbox permission problem fixed"
    assert not watch.holds(folder / "a.mp4", now)


def test_an_unreadable_file_is_blocked_alone(tmp_path: Path) -> None:
    perms, log = Permissions(), Log()
    perms.denied.add((tmp_path / "x.mp4", "read"))
    watch = AccessWatch(log, str, allowed=perms)
    assert watch.holds(tmp_path / "x.mp4", 0.0)
    assert not watch.holds(tmp_path / "y.mp4", 0.0)
    assert [line[2]["kind"] for line in log.lines] == ["read"]


def test_a_gone_path_is_forgotten(tmp_path: Path) -> None:
    perms, log = Permissions(), Log()
    perms.denied.add((tmp_path / "gone", "list"))
    watch = AccessWatch(log, str, allowed=perms)
    watch.block(tmp_path / "gone", "list", 0.0)  # never existed: dropped at the next look
    assert watch.fixed(FIRST_RETRY) == [] and len(watch) == 0


def test_the_fix_names_the_path_quoted(tmp_path: Path) -> None:
    odd = tmp_path / "cam 1; rm -rf"
    odd.mkdir()
    assert f"'{odd}'" in fix_for(odd, "move")
