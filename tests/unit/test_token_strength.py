"""The admin token's strength estimate (api/auth/token_strength.py,
api.auth.credential.weak_token): tokens a person makes up fail whatever their length;
tokens from ``secrets`` of 256 bits always pass. That a weak token keeps the API from
starting (exit 78) is tested over the real start in
tests/integration/test_api_login_throttle.py."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable

import pytest

from api.auth.credential import MIN_TOKEN_BITS, weak_token
from api.auth.token_strength import estimates, period, token_bits, word_split

# Made up, each long enough for the character-class bound alone (every one of them passed
# the check that was only length x log2 of the classes' alphabet).
WEAK = [
    "0" * 40,
    "a" * 64,
    "password" * 8,
    "passwordpassword" * 40,  # longer than zlib's 258-byte matches reach cheaply
    "Password1!" * 3,
    "é" * 20,
    "é" * 200,
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "0123456789" * 5,
    "P@ssw0rd-Admin-2024-Secret-Token!!",
    "qwertyuiopasdfghjklzxcvbnm" * 2,
    "ab" * 40,
]

GENERATORS: dict[str, Callable[[], str]] = {
    "token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
    "token_hex(32)": lambda: secrets.token_hex(32),
    "two uuid4": lambda: f"{uuid.uuid4()}{uuid.uuid4()}",
    "token_urlsafe(48)": lambda: secrets.token_urlsafe(48),
}


@pytest.mark.parametrize("token", WEAK)
def test_made_up_tokens_are_weak(token: str) -> None:
    assert token_bits(token) < MIN_TOKEN_BITS, estimates(token)
    problem = weak_token(token)
    assert problem is not None and problem.startswith("VIDEODROP_ADMIN_TOKEN is too easy")
    assert "secrets.token_urlsafe(32)" in problem


@pytest.mark.parametrize("name", GENERATORS)
def test_a_thousand_generated_tokens_are_strong(name: str) -> None:
    make = GENERATORS[name]
    weak = [t for t in (make() for _ in range(1000)) if weak_token(t) is not None]
    assert weak == [], f"{len(weak)} of 1000 {name} refused, e.g. {estimates(weak[0])}"


def test_each_bound_names_its_reason() -> None:
    assert "one piece repeated" in (weak_token("Password1!" * 3) or "")
    assert "too few different characters" in (weak_token("é" * 20) or "")
    assert "runs of neighbouring characters" in (weak_token("abcdefghijklmnopqrstuvwxyz"
                                                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ") or "")
    assert "too short" in (weak_token("Tr0ub4dor&3") or "")
    assert "common words" in (weak_token("P@ssw0rd-Admin-2024-Secret-Token!!") or "")


@pytest.mark.parametrize(("token", "strong"), [
    ("a", False), ("password", False), ("Tr0ub4dor&3", False),
    ("3f6c0a9b1e2d4f5a", False),  # token_hex(8): 64 bits
    ("aT3_kP9-xQ2mZ7rL0vB8nC4yW6eH1jU5sD", True),  # 34 varied characters, 204 bits at most
])
def test_borderline_tokens(token: str, strong: bool) -> None:
    assert (weak_token(token) is None) is strong, estimates(token)


def test_unset_token_is_not_weak() -> None:  # unset: management off
    assert weak_token(None) is None and weak_token("") is None


def test_the_pieces() -> None:
    assert period("abcabcab") == 3 and period("abcd") == 4 and period("aa") == 1
    assert word_split("xPa55w0rdy123") == (2, "xy")
    assert word_split("nothing-here") == (0, "nothing-here")
