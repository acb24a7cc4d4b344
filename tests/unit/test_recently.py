"""api/tokens/recently.py: once per period per key, bounded."""

from __future__ import annotations

from api.tokens.recently import Recently


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_first_once_per_period() -> None:
    clock = Clock()
    seen = Recently(seconds=30, clock=clock)
    assert seen.first(7) is True
    assert [seen.first(7) for _ in range(5)] == [False] * 5
    assert seen.first(8) is True  # each key on its own
    clock.now += 29.9
    assert seen.first(7) is False
    clock.now += 0.1
    assert seen.first(7) is True  # the period is over: first again, remembered anew
    assert seen.first(7) is False


def test_the_oldest_keys_are_forgotten_beyond_the_size() -> None:
    seen = Recently(seconds=30, size=3, clock=Clock())
    assert all(seen.first(k) for k in (1, 2, 3, 4))  # 1 forgotten
    assert seen.first(1) is True  # done again; 2 forgotten now
    assert [seen.first(k) for k in (3, 4, 1)] == [False, False, False]
    assert seen.first(2) is True
