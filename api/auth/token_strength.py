"""How hard the admin token is to guess: a lower estimate of its entropy in bits.

One string cannot show how it was made, so the estimate takes the smallest of several
upper bounds, each of which a made-up token fails in its own way:

* ``classes``: its length times log2 of the alphabet of the character classes it uses
  (lowercase 26, uppercase 26, digits 10, ASCII punctuation and space 33, anything else
  128). A random token from that alphabet has this much; nothing made of it has more.
* ``characters``: its length times the Shannon entropy of its own character frequencies
  (Miller-Madow corrected for the bias of counting a short sample). ``'0' * 40`` and
  ``'é' * 20`` have 0 bits here, ``'Password1!' * 3`` about 100.
* ``steps``: the same over the differences between neighbouring code points, plus the
  first character's 8 bits: ``abcdef…`` and ``13579…`` have almost none.
* ``compressed``: 8 bits per byte zlib needs for it beyond what it needs for nothing;
  catches repeated pieces (``'passwordpassword…'``).
* ``repeats``: a token made of one piece repeated has the bits of the piece.
* ``words``: a token holding words of :data:`COMMON_WORDS` (case and the usual digit for
  letter swaps ignored) has :data:`WORD_BITS` for each, plus the estimate of the rest.

``secrets.token_urlsafe(32)`` (43 characters, 256 bits) comes out at about 220 and
``secrets.token_hex(32)`` (64 characters, 256 bits) at about 250: for a random token the
empirical bounds are below the true entropy, by a margin that shrinks with its length. A
random token of exactly 128 bits (``token_hex(16)``) comes out between about 100 and 137,
so it is refused more often than not: the refusal asks for a 256-bit one.
"""

from __future__ import annotations

import itertools
import math
import re
import string
import zlib
from collections import Counter
from collections.abc import Iterable

CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits,
           string.punctuation + " ")
OTHER_CLASS = 128  # any character outside printable ASCII counts as one of this many
FIRST_STEP_BITS = 8.0  # the first character of the "steps" bound: where the run starts

# Roots of the passwords people choose (with names of this service); each one found counts
# WORD_BITS, its place and case included.
COMMON_WORDS = (
    "password", "passwd", "passphrase", "secret", "admin", "administrator", "root",
    "letmein", "welcome", "changeme", "default", "qwerty", "qwertz", "azerty", "asdf",
    "zxcv", "iloveyou", "monkey", "dragon", "master", "login", "trustno", "shadow",
    "sunshine", "princess", "football", "baseball", "superman", "batman", "hello",
    "token", "videodrop", "video", "drop", "test", "example", "guest", "user", "pass",
    "abc", "xyz", "123", "1234", "12345", "123456", "654321", "000", "111", "999",
)
WORD_BITS = 16.0  # a word of the list, where it sits and how it is capitalised
LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
        "!": "i", "|": "l"}
_LETTER_WORDS = re.compile("|".join(sorted((w for w in COMMON_WORDS if w.isalpha()),
                                           key=len, reverse=True)))
_DIGIT_WORDS = re.compile("|".join(sorted((w for w in COMMON_WORDS if w.isdigit()),
                                          key=len, reverse=True)))


# What each bound says about a token it finds weak (the refusal's sentence).
REASONS = {
    "classes": "too short for the kinds of characters it uses",
    "characters": "too short, or too few different characters, or some far more often than others",
    "steps": "runs of neighbouring characters, such as abcdef or 13579",
    "compressed": "it compresses well: pieces of it are repeated",
    "repeats": "it is one piece repeated",
    "words": "it is made of common words such as password or admin",
}


def class_bits(token: str) -> float:
    alphabet = sum(len(c) for c in CLASSES if any(ch in c for ch in token))
    if any(not any(ch in c for c in CLASSES) for ch in token):
        alphabet += OTHER_CLASS
    return len(token) * math.log2(alphabet) if alphabet > 1 else 0.0


def frequency_bits(symbols: Iterable[object]) -> float:
    """Length times the Miller-Madow corrected Shannon entropy (bits per symbol) of the
    symbols' own frequencies; 0 for none or for one symbol repeated."""
    counts = Counter(symbols)
    n = sum(counts.values())
    if len(counts) < 2:
        return 0.0
    plug_in = -sum(c / n * math.log2(c / n) for c in counts.values())
    correction = (len(counts) - 1) / (2 * n) / math.log(2)
    return n * (plug_in + correction)


def step_bits(token: str) -> float:
    points = [ord(ch) for ch in token]
    return FIRST_STEP_BITS + frequency_bits(b - a for a, b in itertools.pairwise(points))


_EMPTY = len(zlib.compress(b"", 9))


def compressed_bits(token: str) -> float:
    return 8.0 * max(0, len(zlib.compress(token.encode(), 9)) - _EMPTY)


def period(token: str) -> int:
    """The length of the shortest piece that ``token`` is repeats of (the last one possibly
    cut short), at most half its length; its own length if there is none."""
    n = len(token)
    for p in range(1, n // 2 + 1):
        if all(token[i] == token[i - p] for i in range(p, n)):
            return p
    return n


def word_split(token: str) -> tuple[int, str]:
    """How many :data:`COMMON_WORDS` ``token`` holds, and what is left without them."""
    lowered = "".join(low if len(low := ch.lower()) == 1 else ch for ch in token)
    letters = "".join(LEET.get(ch, ch) for ch in lowered)
    taken = [False] * len(token)
    found = 0
    for words, text in ((_LETTER_WORDS, letters), (_DIGIT_WORDS, lowered)):
        for match in words.finditer(text):
            if not any(taken[match.start():match.end()]):
                found += 1
                taken[match.start():match.end()] = [True] * (match.end() - match.start())
    return found, "".join(ch for ch, gone in zip(token, taken, strict=True) if not gone)


def estimates(token: str) -> dict[str, float]:
    """Every bound of the module docstring, in bits, by name."""
    found = {"classes": class_bits(token), "characters": frequency_bits(token),
             "steps": step_bits(token), "compressed": compressed_bits(token)}
    p = period(token)
    if p < len(token):
        found["repeats"] = token_bits(token[:p])
    words, rest = word_split(token)
    if words:
        found["words"] = words * WORD_BITS + (token_bits(rest) if rest else 0.0)
    return found


def token_bits(token: str) -> float:
    """A lower estimate of the entropy of ``token`` in bits: the smallest of
    :func:`estimates` (module docstring). 0 for the empty string."""
    return min(estimates(token).values()) if token else 0.0
