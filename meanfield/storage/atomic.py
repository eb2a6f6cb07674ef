"""Writing output files whole or not at all.

Every file meanfield writes (run files, figures, CSV summaries, manifests,
sweep scripts) is built under a temporary name in its final folder and
renamed onto its final name (:func:`os.replace`, atomic on POSIX) only once
it is complete, so a reader never sees half a file and a failure leaves the
old file (or none) in place.  Side files (temporaries, writer locks) are
named by :func:`sidecar`, which never makes a name longer than the file
system allows.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

from ..errors import InputError


def sidecar(path: Path, tag: str) -> Path:
    """The hidden side file ``.NAME.TAG`` beside ``path``.

    When that name would be longer than the folder allows (``NAME_MAX``,
    255 bytes on most file systems) a short ``.~HASH.TAG``, HASH a digest of
    NAME, is used instead, so a side file never fails where ``path`` itself
    would not.
    """
    path = Path(path)
    name = f".{path.name}.{tag}"
    if len(os.fsencode(name)) > _name_max(path.parent):
        digest = hashlib.sha1(os.fsencode(path.name)).hexdigest()[:12]
        name = f".~{digest}.{tag}"
    return path.with_name(name)


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder if str(folder) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_output(path, inputs=(), what="output") -> Path:
    """Refuse an output path that cannot or must not be written, before any work is done.

    Refused: an empty name, a name too long for the file system, a missing
    folder, a folder in place of the file, and a path naming one of the
    ``inputs`` (e.g. ``-o`` naming the config file itself).

    Raises
    ------
    InputError
        naming ``path`` and what is wrong with it.
    """
    if path is None or not str(path).strip():
        raise InputError(f"{what}: empty file name")
    path = Path(path)
    if len(os.fsencode(path.name)) > _name_max(path.parent):
        raise InputError(f"{what} {path}: file name too long for its file system")
    if not path.parent.is_dir():
        raise InputError(f"{what} {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file")
    for source in inputs:
        if path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise InputError(f"{what} {path} is the input file {source}: choose another name")
    return path


class WriteFailed(Exception):
    """An output could not be written for want of space or an I/O error (not the user's input).

    The command line prints its one line and exits with :data:`EXIT_WRITE`.
    """


EXIT_WRITE = 74
"""Exit status when an output could not be written (``EX_IOERR`` of sysexits.h)."""

_DEVICE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)


def cannot_write(path, exc: OSError) -> Exception:
    """The one-line error for an output that could not be written.

    :class:`WriteFailed` for a full disk, a quota or an I/O error;
    :class:`~meanfield.errors.InputError` for the rest (read-only file
    system, permissions, names too long): those are the user's to fix.
    """
    code = getattr(exc, "errno", None)
    if code is None:  # h5py reports HDF5's errno inside its message
        found = re.search(r"errno = (\d+)", str(exc))
        code = int(found.group(1)) if found else None
    why = os.strerror(code) if code else str(exc)
    if code == errno.EROFS:
        why = "read-only file system"
    if code in _DEVICE_ERRORS:
        return WriteFailed(f"cannot write {path}: {why}")
    return InputError(f"cannot write {path}: {why}")


class replacing:
    """Context manager: yields a temporary path beside ``path``, renamed onto it on success.

    Stale temporaries left by killed writers are removed first; on error
    the temporary is deleted and ``path`` is left as it was.  OS errors
    (read-only file system, no space, permissions) become one
    :class:`~meanfield.errors.InputError` naming ``path``.

    Examples
    --------
    >>> with replacing(Path("summary.csv")) as tmp:      # doctest: +SKIP
    ...     tmp.write_text("a,b\\n1,2\\n")
    """

    def __init__(self, path):
        self.path = Path(path)
        self.tmp = sidecar(self.path, f"tmp-{os.getpid()}")

    def __enter__(self) -> Path:
        stale_glob = sidecar(self.path, "tmp-*").name
        try:
            for stale in self.path.parent.glob(stale_glob):
                if not _alive(stale.name.rsplit("-", 1)[-1]):
                    stale.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder: the write below says so
        return self.tmp

    def __exit__(self, kind, exc, tb):
        if kind is None:
            try:
                os.replace(self.tmp, self.path)
                return False
            except OSError as err:
                kind, exc = OSError, err
        try:
            self.tmp.unlink(missing_ok=True)
        except OSError:
            pass  # never created (read-only file system, name too long)
        if isinstance(exc, OSError) or (isinstance(exc, RuntimeError) and "errno" in str(exc)):
            raise cannot_write(self.path, exc) from None
        return False


def write_text(path, text: str):
    """Write ``text`` to ``path`` atomically (see :class:`replacing`)."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def _alive(pid) -> bool:
    """Whether process ``pid`` (an int or the digits of a side file's name) runs on this host."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
