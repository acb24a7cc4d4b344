"""The daemon's start-up checks (no broker: nothing is published here)."""

import pytest

from ingest.daemon import IngestDaemon
from videodrop import logs
from videodrop.errors import ConfigurationError
from videodrop.settings import Settings


class NoBroker:
    def publish_batch(self, msgs):
        raise AssertionError("nothing should be published")

    def process_events(self):
        pass

    def close(self):
        pass


def daemon(tmp_path, limit):
    (tmp_path / "inbox" / "a" / "b").mkdir(parents=True)
    settings = Settings(inbox=tmp_path / "inbox", ingest_mode="inotify")
    return IngestDaemon(settings, NoBroker(), logs.get("test"), watch_limit=lambda: limit)


def test_too_few_inotify_watches_is_refused_loudly(tmp_path):
    with pytest.raises(ConfigurationError, match=r"max_user_watches is 3.*VIDEODROP_INGEST_MODE"):
        daemon(tmp_path, 3).prepare()


def test_enough_watches_pass(tmp_path):
    d = daemon(tmp_path, 8192)
    d.prepare()
    assert d.mode == "inotify"


def test_an_inotify_overflow_asks_for_a_rescan_at_once(tmp_path):
    """watchdog rebuilds its watches after IN_Q_OVERFLOW and only logs that events were
    lost; the alarm turns that log line into a rescan event."""
    import logging
    import queue

    from ingest.watcher import OverflowAlarm

    events: queue.Queue = queue.Queue()
    alarm = OverflowAlarm(events, tmp_path)
    logger = logging.getLogger("watchdog.observers.inotify_c")
    logger.addHandler(alarm)
    try:
        logger.warning("Inotify queue overflowed; filesystem events were lost")
        assert events.get_nowait() == ("rescan", tmp_path, None)
        logger.warning("something else")
        assert events.empty()
    finally:
        logger.removeHandler(alarm)


def test_a_rescan_event_rescans(tmp_path):
    d = daemon(tmp_path, 8192)
    d.prepare()
    (d.inbox / "a" / "missed.mp4").write_bytes(b"x")
    d.handle(("rescan", d.inbox, None))
    assert d.inbox / "a" / "missed.mp4" in d.tracker.candidates
    assert d.stats.rescans == 1


def test_names_published_lately_stay_bounded_and_newest_first(tmp_path, monkeypatch):
    """The names kept to spot a name published again (REUSE_SECONDS) are at most
    REUSE_REMEMBERED, the newest kept, and expired ones go: an inbox of many files
    published at once must not make each publish rescan all the others."""
    from ingest import daemon as daemon_module
    from ingest.scan import FileState
    from videodrop.messages import InboxFile

    monkeypatch.setattr(daemon_module, "REUSE_REMEMBERED", 100)
    d = daemon(tmp_path, 8192)
    now = [1000.0]
    d.clock = lambda: now[0]
    state = FileState(InboxFile("f.mp4", 1, 1, 16, 0, 0))
    for i in range(1000):
        d._remember_published(tmp_path / f"f{i}.mp4", (state, now[0]))
    assert len(d.lately) == 100
    assert next(iter(d.lately)) == tmp_path / "f900.mp4"
    d._remember_published(tmp_path / "f950.mp4", (state, now[0]))  # again: now the newest
    assert list(d.lately)[-1] == tmp_path / "f950.mp4"
    now[0] += daemon_module.REUSE_SECONDS
    d._remember_published(tmp_path / "late.mp4", (state, now[0]))
    assert list(d.lately) == [tmp_path / "late.mp4"]


class Recording(NoBroker):
    def __init__(self):
        self.sent = []

    def publish_batch(self, msgs):
        self.sent.extend(msgs)
        return list(msgs)


def test_published_messages_carry_the_inbox_identity_and_device(tmp_path):
    """Every watch-folder message names its inbox (the identity written once at start,
    the same on a restart) and the inbox folder's device number as this host sees it: a
    prober elsewhere tells another inbox's file from a stale message, and compares the
    device with its own view of a shared inbox."""
    import os

    from videodrop import inboxid

    publisher = Recording()
    (tmp_path / "inbox").mkdir()
    d = IngestDaemon(Settings(inbox=tmp_path / "inbox", ingest_mode="poll", settle_seconds=0.1),
                     publisher, logs.get("test"))
    d.prepare()
    written = (tmp_path / "inbox" / inboxid.ID_FILE).read_text().strip()
    assert len(written) == 32
    d.prepare()  # a restart keeps it
    assert (tmp_path / "inbox" / inboxid.ID_FILE).read_text().strip() == written
    (d.inbox / "cam.mp4").write_bytes(b"x" * 100)
    d.rescan("test")
    for cand in list(d.tracker.candidates.values()):
        d.pending.append(cand)
    d.publish_pending(now=1e12)
    assert [m.path for m in publisher.sent] == ["cam.mp4"]
    assert publisher.sent[0].inbox == written
    assert publisher.sent[0].inbox_dev == os.stat(d.inbox).st_dev
    assert d.stats.published == 1  # confirmed: the stamp is not part of the claim key
