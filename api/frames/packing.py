"""How several frames leave in one response: a NumPy ``.npy`` array, or a WebDataset-style
tar written as it goes.

* :func:`npy_header`: the header of an ``.npy`` file (the frames' RGB bytes follow it),
  format version 1.0 (numpy's ``format.py``: the magic ``\\x93NUMPY``, the version, a
  little-endian ``uint16`` header length, a Python-literal header padded with spaces to
  a multiple of 64 bytes and ending in ``\\n``), ``uint8``, C order, shape
  ``(N, H, W, 3)``: RGB, what ``numpy.load`` reads.
* :func:`tar_member` and :data:`TAR_END`: POSIX ustar members (512-byte header, data padded
  to 512) and the two zero blocks that end an archive.
"""

from __future__ import annotations

import tarfile

__all__ = ["TAR_END", "npy_header", "tar_member"]

TAR_END = b"\0" * 1024
_MAGIC = b"\x93NUMPY\x01\x00"


def npy_header(shape: tuple[int, ...]) -> bytes:
    """The header of a ``uint8`` C-order array of ``shape`` (its data follows it)."""
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({dims}), }}"
    pad = -(len(_MAGIC) + 2 + len(text) + 1) % 64
    body = (text + " " * pad + "\n").encode("latin1")
    return _MAGIC + len(body).to_bytes(2, "little") + body


def tar_member(name: str, data: bytes, mtime: int = 0) -> bytes:
    """One ustar member: header, ``data``, zero padding to 512 bytes."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    head = info.tobuf(format=tarfile.USTAR_FORMAT)
    return head + data + b"\0" * (-len(data) % 512)

