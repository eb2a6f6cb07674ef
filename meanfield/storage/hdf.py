"""HDF5 at file level: opening safely, the write-access flag, failed writes.

* Readers of a file a writer holds (or a killed writer left flagged as
  open for writing) use HDF5's SWMR mode, where a metadata block with a
  bad checksum is read again and again (100 times with back-off by
  default: minutes on a damaged file).  :func:`open_file` sets that to a
  few attempts, so a damaged file is refused at once.
* :func:`clear_write_flag` does what ``h5clear -s`` does: it clears the
  "open for writing" flags of the superblock (version 2 and 3, the ones
  SWMR files have) and rewrites its Jenkins lookup3 checksum.
* :func:`freeze` makes an open file unwritable from this process after a
  failed write (a full disk): HDF5 would otherwise go on flushing into the
  failing file on every later call and at close, overwriting the
  structures the last checkpoint needs.
"""

from __future__ import annotations

import ctypes
import os
import sys

import h5py

LIBVER = ("v110", "latest")
"""Files stay readable by HDF5 1.10 tools (h5dump of Debian/Ubuntu's hdf5-tools)."""

_SWMR_READ_ATTEMPTS = 3
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MASK = 0xFFFFFFFF


def locking() -> bool:
    """HDF5 file locking, off when ``HDF5_USE_FILE_LOCKING`` is FALSE (shared file systems)."""
    return os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() not in ("FALSE", "0", "NO")


def open_file(path, mode="r", swmr=False, **kwargs) -> h5py.File:
    """``h5py.File`` with meanfield's settings (locking, bounded SWMR metadata retries)."""
    if not swmr:
        return h5py.File(path, mode, locking=locking(), **kwargs)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    _set_read_attempts(fapl, _SWMR_READ_ATTEMPTS)
    fapl.set_file_locking(locking(), False)  # as h5py.File(locking=...) sets it
    fid = h5py.h5f.open(os.fsencode(str(path)),
                        h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def refresh(obj):
    """``H5Orefresh``: re-read an object's header (attributes) that a SWMR writer changed."""
    try:
        func = ctypes.CDLL(h5py.h5p.__file__).H5Orefresh
    except (OSError, AttributeError):  # pragma: no cover - an h5py built differently
        return
    func.argtypes = [ctypes.c_int64]
    func(obj.id.id)


def _set_read_attempts(fapl, n):
    """``H5Pset_metadata_read_attempts`` (not wrapped by h5py) through the loaded HDF5 library."""
    try:
        func = ctypes.CDLL(h5py.h5p.__file__).H5Pset_metadata_read_attempts
    except (OSError, AttributeError):  # pragma: no cover - an h5py built differently
        return
    func.argtypes = [ctypes.c_int64, ctypes.c_uint]
    func(fapl.id, n)


def _lookup3(data: bytes) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` (initval 0), HDF5's metadata checksum."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n) & _MASK
    words = data.ljust(max(12, -(-n // 12) * 12), b"\0")
    i = 0
    while n - i > 12:
        a, b, c = _add3(words, i, a, b, c)
        for s1, s2, s3 in ((4, 6, 8), (16, 19, 4)):  # mix()
            a = ((a - c) & _MASK) ^ _rot(c, s1)
            c = (c + b) & _MASK
            b = ((b - a) & _MASK) ^ _rot(a, s2)
            a = (a + c) & _MASK
            c = ((c - b) & _MASK) ^ _rot(b, s3)
            b = (b + a) & _MASK
        i += 12
    if i == n:
        return c
    a, b, c = _add3(words, i, a, b, c)
    v = {"a": a, "b": b, "c": c}
    for x, y, k in (("c", "b", 14), ("a", "c", 11), ("b", "a", 25), ("c", "b", 16),
                    ("a", "c", 4), ("b", "a", 14), ("c", "b", 24)):  # final()
        v[x] = ((v[x] ^ v[y]) - _rot(v[y], k)) & _MASK
    return v["c"]


def _rot(x, k):
    return ((x << k) | (x >> (32 - k))) & _MASK


def _add3(words, i, a, b, c):
    return ((a + _u32(words, i)) & _MASK, (b + _u32(words, i + 4)) & _MASK,
            (c + _u32(words, i + 8)) & _MASK)


def _u32(data, i):
    return int.from_bytes(data[i:i + 4], "little")


def write_flag(path) -> bool:
    """Whether ``path``'s superblock says it is open for writing (a writer, or a killed one)."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    return head[:8] == _SIGNATURE and head[8] >= 2 and head[11] != 0


def clear_write_flag(path) -> bool:
    """Clear the open-for-writing flags of ``path`` (as ``h5clear -s``); False if none were set.

    Raises
    ------
    ValueError
        if ``path`` is not an HDF5 file with a version 2 or 3 superblock or
        its superblock checksum is wrong.
    """
    with open(path, "r+b") as fh:
        head = fh.read(12)
        if head[:8] != _SIGNATURE or head[8] not in (2, 3):
            raise ValueError("not an HDF5 file with a version 2/3 superblock")
        size = 12 + 4 * head[9] + 4  # 4 addresses of head[9] bytes, then the checksum
        block = bytearray(head + fh.read(size - 12))
        if _lookup3(bytes(block[:-4])) != _u32(block, size - 4):
            raise ValueError("its superblock is damaged (checksum mismatch)")
        if block[11] == 0:
            return False
        block[11] = 0
        block[-4:] = _lookup3(bytes(block[:-4])).to_bytes(4, "little")
        fh.seek(0)
        fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def freeze(h5: h5py.File, handles: dict):
    """Stop every further write of this process to ``h5``'s file, then close it.

    The file descriptor is pointed at ``/dev/null``, so what HDF5 still
    writes (its caches, when handles and the file close) goes nowhere and
    the file stays as the last successful write left it.  ``handles`` (open
    datasets of the file) are dropped first.
    """
    try:
        fd = h5.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, fd)
        os.close(null)
    except (ValueError, OSError, RuntimeError):
        pass  # an in-memory file, or already closed
    name = h5.filename
    previous = sys.unraisablehook

    def quiet(unraisable):
        # HDF5 errors about this file raised while Python frees its last handles
        if not (isinstance(unraisable.exc_value, (OSError, RuntimeError))
                and name in str(unraisable.exc_value)):
            previous(unraisable)

    sys.unraisablehook = quiet
    try:
        handles.clear()
        h5.close()
    except (OSError, RuntimeError, ValueError):
        pass  # what it attempted to write went nowhere, as intended
