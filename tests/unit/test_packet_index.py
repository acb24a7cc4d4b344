"""The stored packet index's file (videodrop/packets.py): what it writes is a ``.npy``
that NumPy reads as the same columns, and it reads back what it wrote."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pytest

from videodrop.packets import DISCARD, KEY, UNKNOWN, PacketIndex, from_npy, to_npy

INDEX = PacketIndex(Fraction(1, 12800), Fraction(3, 2), pts=[-512, 1024, None, 512],
                    dts=[-1536, None, 0, 512], duration=[512, 512, None, 0],
                    pos=[48, 803, -1, 900], size=[755, 63, 16, 1],
                    flags=[KEY | DISCARD, 0, 0, KEY])


def test_numpy_reads_the_stored_file():
    array = np.load(io.BytesIO(to_npy(INDEX)))
    assert array.dtype.names == ("pts", "dts", "duration", "pos", "size", "flags")
    assert array.dtype.itemsize == 37  # packed
    assert array["pts"].tolist() == [-512, 1024, UNKNOWN, 512]
    assert array["dts"].tolist() == [-1536, UNKNOWN, 0, 512]
    assert array["pos"].tolist() == INDEX.pos and array["size"].tolist() == INDEX.size
    assert array["flags"].tolist() == [3, 0, 0, 1]


def test_it_reads_back_what_it_wrote():
    again = from_npy(to_npy(INDEX), INDEX.time_base, INDEX.start)
    assert again == INDEX
    empty = PacketIndex(Fraction(1, 1000), Fraction(0), [], [], [], [], [], [])
    assert from_npy(to_npy(empty), empty.time_base, empty.start) == empty


def test_seconds_are_on_the_timeline():
    assert INDEX.seconds(1024) == pytest.approx(1024 / 12800 - 1.5)
    assert INDEX.seconds(19200) == 0.0  # exactly the start
    assert INDEX.seconds(None) is None and INDEX.span(None) is None
    assert INDEX.span(512) == 0.04


@pytest.mark.parametrize("data", [b"", b"not numpy", to_npy(INDEX)[:-1],
                                  to_npy(INDEX).replace(b"'<i4'", b"'<i8'")])
def test_anything_else_is_refused(data):
    with pytest.raises(ValueError):
        from_npy(data, Fraction(1, 1000), Fraction(0))
