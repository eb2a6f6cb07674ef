r"""Training data: teacher-student, random labels, or arrays the user provides.

Teacher-student data draws inputs from N(0, I_d) or uniformly on the unit
sphere and labels them with a teacher network of ``teacher_m`` = m0
unit-norm neurons with output weights :math:`\pm 1`,

.. math:: f^*(x) = \frac{1}{m_0} \sum_{j=1}^{m_0} c_j\, s^*(a_j \cdot x),

stored like the particles (rows [a, c], no bias), so that a mean-field
student with :math:`\alpha = 1` can represent it exactly.  Labels are
:math:`y = f^*(x) + \sigma \xi` for the squared loss and its sign for the
logistic loss.  Random labels are independent uniform signs.  User data
comes as arrays (Python API) or a ``.npz`` / ``.h5`` file holding
``x_train, y_train, x_test, y_test``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InputError
from .kernels import teacher_labels
from .losses import IDS as LOSS_IDS
from .activations import IDS as ACT_IDS

FIELDS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class Dataset:
    """Arrays a run trains and tests on; ``teacher`` is (m0, d + 1) rows [a, c] or None."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    teacher: Optional[np.ndarray] = None

    def validated(self, config, source: str = "data") -> "Dataset":
        """Float64 C-contiguous copies, checked for shape, finiteness and labels.

        Raises
        ------
        InputError
            naming the array and ``source`` when shapes disagree with each
            other or with ``data.d``, values are NaN or infinite, or labels
            are not in {-1, +1} under the logistic loss.
        """
        arrays = {}
        for name in FIELDS:
            try:
                a = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(f"{source}: {name} is not a numeric array") from None
            want = 2 if name.startswith("x") else 1
            if a.ndim != want:
                raise InputError(f"{source}: {name} must have {want} dimensions, got shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise InputError(f"{source}: {name} contains NaN or infinite values")
            arrays[name] = a
        d = config.data.d
        for split in ("train", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if x.shape[0] != y.shape[0]:
                raise InputError(
                    f"{source}: x_{split} has {x.shape[0]} rows but y_{split} has {y.shape[0]}")
            if x.shape[1] != d:
                raise InputError(
                    f"{source}: x_{split} has {x.shape[1]} columns but data.d = {d}")
            if x.shape[0] == 0:
                raise InputError(f"{source}: x_{split} is empty")
            if config.loss.name == "logistic" and not np.all(np.abs(y) == 1.0):
                raise InputError(
                    f"{source}: y_{split} must be in {{-1, 1}} for the logistic loss")
        teacher = None if self.teacher is None else np.ascontiguousarray(self.teacher, np.float64)
        return Dataset(teacher=teacher, **arrays)


def make_teacher(config, rng: np.random.Generator) -> np.ndarray:
    """Teacher particles (m0, d + 1): unit-norm a_j (uniform directions), c_j = +-1 alternating."""
    m0, d = config.data.teacher_m, config.data.d
    a = rng.standard_normal((m0, d))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    c = np.where(np.arange(m0) % 2 == 0, 1.0, -1.0)
    return np.ascontiguousarray(np.hstack([a, c[:, None]]))


def sample_inputs(config, n: int, rng: np.random.Generator) -> np.ndarray:
    """n inputs from N(0, I_d) or uniform on the unit sphere (``data.input``)."""
    x = rng.standard_normal((n, config.data.d))
    if config.data.input == "sphere":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_dataset(config, rng: np.random.Generator) -> Dataset:
    """The dataset of ``config`` (kinds ``teacher``, ``random_labels``, ``file``)."""
    dc = config.data
    if dc.kind == "file":
        return load_dataset(dc.path, config)
    # independent streams, so that the teacher and the test set do not depend on n_train
    teacher_rng, train_rng, test_rng = rng.spawn(3)
    x_train = sample_inputs(config, dc.n_train, train_rng)
    x_test = sample_inputs(config, dc.n_test, test_rng)
    if dc.kind == "random_labels":
        y_train = train_rng.choice([-1.0, 1.0], size=dc.n_train)
        y_test = test_rng.choice([-1.0, 1.0], size=dc.n_test)
        return Dataset(x_train, y_train, x_test, y_test)
    teacher = make_teacher(config, teacher_rng)
    tact, loss = ACT_IDS[dc.teacher_activation], LOSS_IDS[config.loss.name]
    y_train = teacher_labels(teacher, tact, x_train, train_rng.standard_normal(dc.n_train),
                             dc.noise, loss)
    y_test = teacher_labels(teacher, tact, x_test, test_rng.standard_normal(dc.n_test),
                            dc.noise, loss)
    return Dataset(x_train, y_train, x_test, y_test, teacher)


def exact_population(config) -> bool:
    """Whether the population risk of ``config`` has a closed form (see kernels.population)."""
    from .kernels.population import supported
    return config.data.kind == "teacher" and supported(
        config.model.activation, config.data.teacher_activation,
        config.data.input == "sphere", config.model.bias, config.loss.name)


def population_sample(config, teacher, rng: np.random.Generator):
    """A fixed Monte-Carlo sample (X, y) of ``data.population_samples`` fresh teacher points."""
    n = config.data.population_samples
    x = sample_inputs(config, n, rng)
    y = teacher_labels(teacher, ACT_IDS[config.data.teacher_activation], x,
                       rng.standard_normal(n), config.data.noise, LOSS_IDS[config.loss.name])
    return x, y


def load_dataset(path, config) -> Dataset:
    """Read ``x_train, y_train, x_test, y_test`` from a .npz or .h5 file and validate them.

    An .h5 file may hold them at the top level or under ``/meanfield/data``
    (so a run file can serve as the data of another run).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data.path {path}: no such file")
    try:
        if path.suffix == ".npz":
            with np.load(path) as z:
                arrays = {k: z[k] for k in FIELDS if k in z}
        else:
            import h5py
            with h5py.File(path, "r") as h:
                group = h["meanfield/data"] if "meanfield/data" in h else h
                arrays = {k: group[k][()] for k in FIELDS
                          if isinstance(group.get(k), h5py.Dataset)}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"data.path {path}: cannot read it ({exc})") from None
    missing = [k for k in FIELDS if k not in arrays]
    if missing:
        raise InputError(f"data.path {path}: missing array(s) {', '.join(missing)}")
    return Dataset(**arrays).validated(config, source=f"data.path {path}")
