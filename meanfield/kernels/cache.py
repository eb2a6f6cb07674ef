"""Numba's on-disk cache, invalidated by a change to any kernel module.

Numba checks a cached function against the stamp of its own source file only,
so a kernel whose callee in another module changed (inlined or called) would
load the old machine code.  Every kernel of :mod:`meanfield.kernels` is
therefore cached under one stamp, that of all the package's kernel modules
(names, modification times and sizes): editing or upgrading any of them
recompiles them all once.  Where the cache lives is Numba's choice as usual
(``NUMBA_CACHE_DIR``, else ``__pycache__`` beside the module, else the user's
cache folder).
"""

import os
from pathlib import Path

from numba.core import caching

FOLDER = Path(__file__).resolve().parent


def kernels_stamp(folder=FOLDER):
    """The stamp of every ``*.py`` file of ``folder``: sorted (name, mtime_ns, size)."""
    stamps = []
    for path in sorted(Path(folder).glob("*.py")):
        st = os.stat(path)
        stamps.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


class _KernelsStamp:
    """Locator mixin: only the kernel modules, stamped all together."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != FOLDER:
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return kernels_stamp()


def _install():
    """Put the whole-package locators first, in Numba's own order of preference."""
    classes = getattr(caching.CacheImpl, "_locator_classes", None)
    if classes is None or any(issubclass(c, _KernelsStamp) for c in classes):
        return
    ours = [type(f"Kernels{base.__name__}", (_KernelsStamp, base), {})
            for base in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                         caching.UserWideCacheLocator)]
    classes[:0] = ours


_install()
