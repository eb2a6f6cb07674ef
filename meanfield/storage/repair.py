"""``meanfield repair FILE``: clear the open-for-writing flag a killed writer left."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .hdf import clear_write_flag, write_flag
from .lock import WriterLock
from .reader import open_run


def repair(path) -> bool:
    """Clear the "open for writing" flag of a run file whose writer is gone (as ``h5clear -s``).

    A killed writer leaves its file flagged; meanfield reads such files
    anyway, but other HDF5 tools (h5py, pyh5md, h5dump) refuse them until
    the flag is cleared.  The writer lock is taken first, so a live writer
    is never disturbed.

    Returns
    -------
    bool
        True if the flag was set and is now cleared, False if it was not set.

    Raises
    ------
    InputError
        if ``path`` is not a run file, is damaged, or a live process writes it.
    """
    path = Path(path)
    open_run(path).close()
    lock = WriterLock(path)
    try:
        if not write_flag(path):
            return False
        try:
            clear_write_flag(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot repair: {exc}") from None
        open_run(path).close()
        return True
    finally:
        lock.release()
