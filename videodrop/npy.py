"""The header of a NumPy ``.npy`` file, format version 1.0 (numpy's ``format.py``): the
magic ``\\x93NUMPY``, the version, a little-endian ``uint16`` header length, then a Python
literal ``{'descr': …, 'fortran_order': False, 'shape': (…), }`` padded with spaces to a
multiple of 64 bytes and ending in ``\\n``. The array's bytes, C order, follow it: what
``numpy.load`` reads. Written by the stored packet index (videodrop/packets.py) and the
API's ``/frames/?format=npy`` (api/frames/packing.py)."""

from __future__ import annotations

__all__ = ["MAGIC", "npy_header"]

MAGIC = b"\x93NUMPY\x01\x00"


def npy_header(shape: tuple[int, ...], descr: object) -> bytes:
    """The header of a C-order array of ``shape`` whose dtype is ``descr`` (numpy's
    ``descr`` as a Python literal: ``'|u1'``, or a list of ``(name, type)`` pairs for a
    record array)."""
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': ({dims}), }}"
    pad = -(len(MAGIC) + 2 + len(text) + 1) % 64
    body = (text + " " * pad + "\n").encode("latin1")
    return MAGIC + len(body).to_bytes(2, "little") + body
