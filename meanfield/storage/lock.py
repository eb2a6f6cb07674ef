"""One writer per run file: an exclusive lock file beside it.

``.NAME.lock`` (see :func:`~meanfield.storage.atomic.sidecar`) holds the
owner's ``pid host`` and an exclusive ``flock`` for as long as the writer
lives.  The kernel drops the ``flock`` when its owner dies, however it
dies, so a lock file left by a killed writer is stale and taken over.  On
file systems without ``flock`` the recorded pid is checked instead (stale
when the host is this one and the pid is gone).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path

from ..errors import InputError
from .atomic import _alive, cannot_write, sidecar


class Busy(InputError):
    """Another live process writes the file."""


def lock_path(path) -> Path:
    """Where the writer lock of run file ``path`` lives."""
    return sidecar(Path(path), "lock")


def _owner(fd) -> tuple:
    """``(pid, host)`` recorded in an open lock file, ``(None, None)`` if empty or garbled."""
    raw = os.pread(fd, 512, 0).decode(errors="replace").split()
    if len(raw) >= 2 and raw[0].isdigit():
        return int(raw[0]), raw[1]
    return None, None


def _flock_soon(fd, tries=5):
    """Exclusive ``flock``, retried a few milliseconds (a reader's probe holds it briefly)."""
    for i in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if i == tries - 1:
                raise
            time.sleep(0.01)


class WriterLock:
    """The exclusive right to write run file ``path``; release with :meth:`release`.

    Raises
    ------
    Busy
        "FILE is being written by pid N on HOST" when a live writer holds it.
    InputError
        when the lock file cannot be created (read-only folder, ...).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.file = lock_path(self.path)
        self.fd = None
        for _ in range(10):  # retried only while others release and remove the file
            fd = self._open()
            if self._take(fd) and self._current(fd):
                break
            os.close(fd)
        else:  # pragma: no cover - ten consecutive races
            raise Busy(f"{self.path}: could not take its writer lock {self.file}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self.fd = fd

    def _open(self) -> int:
        try:
            return os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise cannot_write(self.path, exc) from None

    def _take(self, fd) -> bool:
        """Lock ``fd``; raise :class:`Busy` if a live writer holds it."""
        try:
            _flock_soon(fd)
            return True
        except BlockingIOError:
            pid, host = _owner(fd)
        except OSError as exc:  # no flock here (some network file systems)
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            pid, host = _owner(fd)
            if pid is None or (host == socket.gethostname() and not _alive(pid)):
                return True
        os.close(fd)
        who = f"pid {pid} on {host}" if pid is not None else "another process"
        raise Busy(f"{self.path} is being written by {who}")

    def _current(self, fd) -> bool:
        """Whether ``fd`` is still the lock file at its path (not removed by a releasing owner)."""
        try:
            return os.stat(self.file).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def release(self):
        """Remove the lock file and drop the lock (idempotent)."""
        if self.fd is None:
            return
        try:
            self.file.unlink(missing_ok=True)
        except OSError:
            pass  # the folder became read-only: the flock below is what counts
        os.close(self.fd)
        self.fd = None


def holder(path) -> str | None:
    """"pid N on HOST" of the live writer of ``path``, or None; creates and locks nothing."""
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except OSError:
        return None
    try:
        pid, host = _owner(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            return f"pid {pid} on {host}"
        except OSError:  # no flock here: trust the recorded pid on this host
            alive = pid is not None and (host != socket.gethostname() or _alive(pid))
            return f"pid {pid} on {host}" if alive else None
    finally:
        os.close(fd)
