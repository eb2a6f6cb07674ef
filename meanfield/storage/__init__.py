"""The run file: HDF5 following H5MD 1.1, plus one ``/meanfield`` group.

::

    /h5md                       attrs version=[1, 1]; groups creator, author
    /particles/network/box      attrs dimension=D, boundary=["none", ...]
    /particles/network/position/{step (k,), time (k,), value (k, m, D)}
    /particles/layer_j/{box, position/{step, time, value (k, n_j, n_{j-1})}}  # deep linear
    /observables/<name>/{step, time, value}
    /parameters                 attrs: config (resolved TOML), alpha, m, d, ...
    /meanfield                  attrs: status, message, format_version
    /meanfield/data/{x_train, y_train, x_test, y_test}, /meanfield/teacher
    /particles/network/{particle (m,), coordinate (D,)}  # scales of the position axes
    /meanfield/checkpoint/{particles (2, m, D), step (2,), time (2,),
                           rng_state (2, 1024), lengths (2, S),
                           extras (2, B), extras_size (2,), slot}

Files are written with HDF5's ``libver=("v110", "latest")`` (readable by
HDF5 1.10 tools such as ``h5dump``), every array carries a fletcher32
checksum (a flipped byte is an error, never a wrong number), and
``step`` is the dimension scale of each series.  One writer at a time
owns a file (:mod:`~meanfield.storage.lock`); readers never block it and
follow it while it runs (SWMR).  The modules:

* :mod:`~meanfield.storage.layout` - where everything lives; the header;
* :mod:`~meanfield.storage.writer` - :class:`RunWriter` (create, resume,
  append, checkpoint, finish);
* :mod:`~meanfield.storage.reader` - :func:`open_run`, :class:`Run`;
* :mod:`~meanfield.storage.atomic` - whole-or-nothing output files, used
  for every file meanfield writes;
* :mod:`~meanfield.storage.lock`, :mod:`~meanfield.storage.hdf`,
  :mod:`~meanfield.storage.repair` - writer locks, file-level HDF5
  (bounded retries on damaged files, the write flag), ``meanfield repair``;
* :mod:`~meanfield.storage.export` - xarray / pandas views for notebooks.
"""

from .atomic import EXIT_WRITE, WriteFailed, check_output, replacing, write_text
from .layout import FORMAT_VERSION, STATUSES
from .lock import Busy, holder
from .reader import Checkpoint, DamagedFile, Observable, Run, open_run, read_status
from .repair import repair
from .writer import NoCheckpoint, RunWriter

__all__ = ["RunWriter", "Run", "open_run", "read_status", "Observable", "Checkpoint",
           "NoCheckpoint", "DamagedFile", "Busy", "WriteFailed", "EXIT_WRITE", "repair",
           "replacing", "write_text", "check_output", "holder", "FORMAT_VERSION", "STATUSES"]
