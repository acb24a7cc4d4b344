"""The change listener's pure parts (videodrop/changes.py): which event each notice is,
and how events reach subscribers. The listener on a real PostgreSQL is tested through its
subscribers in tests/integration/test_token_cache.py and test_stream_links.py."""

from __future__ import annotations

import pytest

from videodrop import logs
from videodrop.changes import (
    LINKS_CHANNEL,
    VIDEOS_CHANNEL,
    AllChanged,
    ChangeListener,
    Deaf,
    LinkChanged,
    Listening,
    VideoChanged,
    event_of,
)


@pytest.mark.parametrize(("channel", "payload", "event"), [
    (VIDEOS_CHANNEL, "42", VideoChanged(42)),
    (VIDEOS_CHANNEL, "*", AllChanged()),
    (VIDEOS_CHANNEL, "", None),
    (VIDEOS_CHANNEL, "x1", None),
    (VIDEOS_CHANNEL, "-1", None),
    (LINKS_CHANNEL, "Jx0iAbCdEfGhIjKlMnOp", LinkChanged("Jx0iAbCdEfGhIjKlMnOp")),
    (LINKS_CHANNEL, "*", AllChanged()),
    (LINKS_CHANNEL, "", None),
    ("elsewhere", "1", None),
])
def test_each_notice_is_one_event(channel, payload, event):
    assert event_of(channel, payload) == event


def test_subscribers_get_their_types_in_order_and_a_failing_one_stops_nobody():
    listener = ChangeListener("postgresql:///never-connected", log=logs.get("test"))
    got: list[tuple[str, object]] = []

    def fails(event: VideoChanged) -> None:
        got.append(("fails", event))
        raise RuntimeError("a subscriber's bug")

    listener.subscribe(VideoChanged, fails)
    listener.subscribe(VideoChanged, lambda e: got.append(("second", e)))
    listener.subscribe(Listening, lambda e: got.append(("listening", e)))
    listener.subscribe(Deaf, lambda e: got.append(("deaf", e)))
    listener._emit(VideoChanged(7))
    listener._emit(LinkChanged("t" * 20))  # nobody subscribed: nobody called
    listener.close()  # never started: subscribers still hear that nothing is heard
    assert got == [("fails", VideoChanged(7)), ("second", VideoChanged(7)), ("deaf", Deaf())]
