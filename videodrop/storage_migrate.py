"""``videodrop storage migrate --to s3://bucket/prefix [--dry-run]``: copy the file store
the settings name (``VIDEODROP_STORAGE_URL=file://…``, by default
``VIDEODROP_MEDIA_ROOT``) to another store, every object verified; resumable.

**What the switch is.** Keys are relative and the same in every store: an original is
``videos/<source_id>/<name>`` (the row's ``stored_path``), a derivative
``derivatives/<source_id>/<file>``; a file store maps a key to ``<root>/<key>``, an s3
store to ``<prefix><key>``. So nothing in the catalog is rewritten: once every object is
in the target, verified, the system runs on it by setting ``VIDEODROP_STORAGE_URL`` to the
target on every host (docs/storage.md, the procedure). The command checks that every
original the catalog names (``processing`` and ``ready`` rows) is verified in the target
and prints that setting; it exits 1 otherwise.

**Per object** (the source's listing, by key; temporaries are not listed): the put
announces the size the source listed and, for an original the prober hashed, the SHA-256
the catalog holds; the put hashes and counts what it reads (:class:`IntegrityFailure`,
nothing visible, when either differs), the target checks every part's checksum, and the
target's size of the object is checked after. The object's SHA-256 then goes into the
journal.

**Resume.** The journal ``<root>/.migrate/<target>.jsonl`` (one JSON line per verified
object: key, size, mtime, sha256; fsynced) survives a kill. A run skips an object that
the journal holds with the source's present size and mtime and that the target lists
with that size; anything else is copied again, a killed run's unfinished multipart upload
of that key aborted first. A run after the switch's final one copies nothing.

Exit status: 0 (all verified, the catalog's originals all in the target), 1 (an object
failed, or an original is missing from the source or the target), 69 (the catalog or the
target does not answer), 78 (the source is not a file store, the target is the source, a
bad URL, the target refuses us: no bucket, credentials or permission refused).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from videodrop import logs, media, storage
from videodrop.catalog import Catalog
from videodrop.errors import ConfigurationError, TransientFileError
from videodrop.settings import Settings
from videodrop.storage import (
    FileStore,
    IntegrityFailure,
    MediaStore,
    ObjectInfo,
    StoreError,
    StoreRefused,
    StoreUnavailable,
)

#: sysexits.h EX_UNAVAILABLE: the catalog or the target store does not answer; run again.
EX_UNAVAILABLE = 69
HELP = "storage migrate --to s3://bucket/prefix: copy the file store there, verified"
#: Where a file store keeps the journals of its migrations (a dot folder: not an object).
JOURNAL_DIR = ".migrate"


@dataclass(frozen=True)
class Verified:
    """An object copied and verified: key, size in bytes, the source's mtime (seconds
    since the epoch) when it was copied, SHA-256 (64 hex digits)."""

    key: str
    size: int
    mtime: float
    sha256: str


class Journal:
    """The verified objects of one source → target migration, one JSON line each."""

    def __init__(self, root: Path, target: str) -> None:
        name = hashlib.sha256(target.encode()).hexdigest()[:16]
        self.path = root / JOURNAL_DIR / f"{name}.jsonl"

    def load(self) -> dict[str, Verified]:
        """What earlier runs verified (a line cut short by a kill is skipped)."""
        found: dict[str, Verified] = {}
        with contextlib.suppress(FileNotFoundError), self.path.open(encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    entry = Verified(**json.loads(line))
                    found[entry.key] = entry
        return found

    def add(self, entry: Verified) -> None:
        """Record ``entry`` durably (appended, fsynced)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(entry)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


@dataclass
class Plan:
    """What a run does: the objects to copy, and those verified already."""

    copy: list[ObjectInfo]
    verified: dict[str, Verified]


def plan(source: MediaStore, target: MediaStore, done: dict[str, Verified],
         expected: dict[str, str | None]) -> Plan:
    """Compare the source's listing with the journal ``done`` and the target's listing
    (one listing of each store); ``expected``: the catalog's SHA-256 of its originals."""
    present = {info.key: info.size for info in target.list_objects()}
    result = Plan([], {})
    for info in source.list_objects():
        entry = done.get(info.key)
        if (entry is not None and (entry.size, entry.mtime) == (info.size, info.mtime)
                and present.get(info.key) == info.size
                and expected.get(info.key) in (None, entry.sha256)):
            result.verified[info.key] = entry
        else:
            result.copy.append(info)
    return result


def copy_one(source: MediaStore, target: MediaStore, info: ObjectInfo,
             sha256: str | None) -> Verified:
    """Copy and verify one object (see the module docstring); :class:`IntegrityFailure`
    when the bytes are not the ones announced, the store's errors otherwise."""
    target.abort_stale_uploads(0, prefix=info.key)  # a killed run's put of this key
    with contextlib.closing(source.open(info.key)) as reader:
        stored = target.put_stream(info.key, reader,  # type: ignore[arg-type]
                                   size=info.size, sha256=sha256)
    if (held := target.stat(info.key).size) != info.size:
        raise IntegrityFailure(f"{info.key}: the target holds {held} bytes, {info.size}"
                               " were copied")
    return Verified(info.key, stored.size, info.mtime, stored.sha256)


def main(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="videodrop storage", description=HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="copy the file store to another store")
    migrate.add_argument("--to", required=True, metavar="URL",
                         help="the target store: s3://bucket/prefix (or file:///path)")
    migrate.add_argument("--dry-run", action="store_true",
                         help="print what would be copied; change nothing")
    args = parser.parse_args(argv)
    source = storage.from_settings(settings)
    if not isinstance(source, FileStore):
        raise ConfigurationError(f"storage migrate copies a file:// store; the settings"
                                 f" name {source.describe()}")
    target = storage.from_url(args.to, settings, named_by="--to")
    if target.describe() == source.describe():
        raise ConfigurationError(f"--to {args.to} is the store the settings name")
    catalog = Catalog.connect(settings.database_url, min_size=1, max_size=1)
    try:
        expected = catalog.stored_keys()
    finally:
        catalog.close()
    journal = Journal(source.root, target.describe())
    try:
        todo = plan(source, target, journal.load(), expected)
    except StoreRefused as exc:  # no bucket, credentials refused: an operator must act
        raise ConfigurationError(f"--to {args.to}: the store refuses us: {exc}") from exc
    except StoreUnavailable as exc:
        print(f"videodrop storage: --to {args.to} does not answer: {exc}; nothing copied,"
              " run again later", file=sys.stderr)
        return EX_UNAVAILABLE
    if args.dry_run:
        return _dry_run(todo, expected, args.to)
    return _run(settings, source, target, journal=journal, todo=todo, expected=expected,
                url=args.to)


def _dry_run(todo: Plan, expected: dict[str, str | None], url: str) -> int:
    for info in todo.copy:
        print(f"would copy {media.display(info.key)} {info.size}")
    print(f"dry run: {len(todo.copy)} objects ({sum(i.size for i in todo.copy)} bytes)"
          f" to copy to {url}, {len(todo.verified)} verified already; the catalog names"
          f" {len(expected)} originals")
    return 0


def _run(settings: Settings, source: MediaStore, target: MediaStore, *, journal: Journal,
         todo: Plan, expected: dict[str, str | None], url: str) -> int:
    logs.configure(role="storage", fmt=settings.log_format, level=settings.log_level)
    log = logs.get("videodrop.storage.migrate")
    failed = 0
    copied_bytes = 0
    for info in todo.copy:
        try:
            entry = copy_one(source, target, info, expected.get(info.key))
        except (StoreError, TransientFileError, OSError) as exc:
            failed += 1
            print(f"FAILED {media.display(info.key)}: {exc}")
            continue
        except ValueError as exc:  # a file whose name is no key (not UTF-8, a control char)
            failed += 1
            print(f"FAILED {media.display(info.key)}: its name is no object key ({exc})")
            continue
        journal.add(entry)
        todo.verified[info.key] = entry
        copied_bytes += entry.size
        print(f"copied {entry.key} {entry.size} sha256={entry.sha256}")
    missing = sorted(set(expected) - set(todo.verified))
    for key in missing:
        print(f"MISSING {key}: the catalog names it, the target does not hold it verified")
    print(f"copied {len(todo.copy) - failed} objects ({copied_bytes} bytes), "
          f"{len(todo.verified)} verified in all, {failed} failed, {len(missing)} of the"
          f" catalog's {len(expected)} originals missing")
    log.info("storage migrated", target=target.describe(), copied=len(todo.copy) - failed,
             failed=failed, missing=len(missing))
    if failed or missing:
        return 1
    print(f"the target holds every object: switch with VIDEODROP_STORAGE_URL={url}")
    return 0
