"""How several frames leave in one response: a NumPy ``.npy`` array, or a WebDataset-style
tar written as it goes.

* :func:`npy_header`: the header of an ``.npy`` file (videodrop/npy.py) whose data are
  the frames' RGB bytes: ``uint8``, C order, shape ``(N, H, W, 3)``.
* :func:`tar_member` and :data:`TAR_END`: POSIX ustar members (512-byte header, data padded
  to 512) and the two zero blocks that end an archive.
"""

from __future__ import annotations

import tarfile

from videodrop.npy import npy_header as _npy_header

__all__ = ["TAR_END", "npy_header", "tar_member"]

TAR_END = b"\0" * 1024


def npy_header(shape: tuple[int, ...]) -> bytes:
    """The header of a ``uint8`` C-order array of ``shape`` (its data follows it)."""
    return _npy_header(shape, "|u1")


def tar_member(name: str, data: bytes, mtime: int = 0) -> bytes:
    """One ustar member: header, ``data``, zero padding to 512 bytes."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    head = info.tobuf(format=tarfile.USTAR_FORMAT)
    return head + data + b"\0" * (-len(data) % 512)

