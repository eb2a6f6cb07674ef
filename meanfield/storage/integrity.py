"""Byte-level checks of a run file that HDF5 does not make for every reader."""

from __future__ import annotations

import os

_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def truncation(path):
    """Why the HDF5 file ``path`` is shorter than its superblock says it is, or None.

    HDF5 makes this check itself, except for SWMR readers, and a file left by
    a killed SWMR writer can only be read as one: a truncated such file (a
    full disk, a partial copy) would otherwise read as a partial run whose
    missing bytes come back as zeros.  The superblock (at byte 0, 512, 1024,
    ...) records the end-of-file address; versions 0/1 keep it after 16/20
    bytes of fixed fields, versions 2/3 after 4.

    Examples
    --------
    >>> truncation("no/such/file.h5") is None
    True
    """
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as fh:
            offset = 0
            while True:
                if offset + 8 > size:
                    return None             # no signature: h5py reports it
                fh.seek(offset)
                if fh.read(8) == _SIGNATURE:
                    break
                offset = 512 if offset == 0 else 2 * offset
            head = fh.read(16)
            if len(head) < 16 or head[0] > 3:
                return None
            so, at = (head[1], 12) if head[0] >= 2 else (head[5], 24 if head[0] == 0 else 28)
            fh.seek(offset + at)
            raw = fh.read(3 * so)
    except OSError:
        return None
    if len(raw) < 3 * so:
        return f"{path}: truncated HDF5 file ({size} bytes)"
    eof = int.from_bytes(raw[2 * so:], "little")   # counts a user block before the superblock
    if size < eof:
        return f"{path}: truncated HDF5 file ({size} bytes of the {eof} it records)"
    return None
