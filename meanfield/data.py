r"""Training data: teacher-student, random labels, or arrays the user provides.

Teacher-student data draws inputs from N(0, I_d) or uniformly on the unit
sphere and labels them with a teacher network of ``teacher_m`` = m0
unit-norm neurons with signs :math:`s_j = \pm 1` (``teacher_signs``:
alternating, or random :math:`s_j = \mathrm{sign}(N(0, 1))`), either their
mean (``teacher_output = "mean"``, the default) or their sum (``"sum"``, the
teacher of Chizat, Oyallon & Bach's scripts):

.. math:: f^*(x) = \frac{1}{m_0} \sum_{j=1}^{m_0} c_j\, s^*(a_j \cdot x),
          \qquad c_j = s_j \ \text{(mean)} \ \text{or} \ c_j = m_0 s_j \ \text{(sum)},

stored like the particles (rows [a, c], no bias), so that a mean-field
student with :math:`\alpha = 1` can represent it exactly.  Labels are
:math:`y = f^*(x) + \sigma \xi` for the squared loss and its sign for the
logistic loss.  Random labels are independent uniform signs.  User data
comes as arrays (Python API) or a ``.npz`` / ``.h5`` file holding
``x_train, y_train, x_test, y_test``; a relative ``data.path`` in a config
file is relative to that file's folder.

Label corruption (``data.label_corruption = p``) replaces the labels of
round(p n) training points, chosen uniformly without replacement, by labels
drawn from the empirical label marginal: the labels of as many points of a
uniformly shuffled training set.  The replacements are independent of the
inputs; the corrupted indices are kept in :attr:`Dataset.corrupted`.  The
test labels stay clean.  ``data.kind = "random_labels"`` is the p = 1 limit
with fresh signs instead of shuffled labels.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InputError
from .kernels import teacher_labels
from .losses import IDS as LOSS_IDS
from .activations import IDS as ACT_IDS

FIELDS = ("x_train", "y_train", "x_test", "y_test")


def real_array(value, what: str, dtype=np.float64) -> np.ndarray:
    """``value`` as a C-contiguous real array; complex or non-numeric values raise InputError.

    Complex input is refused rather than cast, which would drop the imaginary part.
    """
    try:
        raw = np.asarray(value)
        complex_valued = np.iscomplexobj(raw)
        real = None if complex_valued else np.ascontiguousarray(raw, dtype=dtype)
    except (TypeError, ValueError):
        raise InputError(f"{what} is not a numeric array") from None
    if complex_valued:
        raise InputError(f"{what} is complex-valued (real numbers expected)")
    return real


@dataclass
class Dataset:
    """Arrays a run trains and tests on.

    ``teacher`` is (m0, d + 1) rows [a, c] or None; ``corrupted`` holds the
    sorted indices of the training labels replaced by label corruption, or None.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    teacher: Optional[np.ndarray] = None
    corrupted: Optional[np.ndarray] = None

    def validated(self, config, source: str = "data") -> "Dataset":
        """Float64 C-contiguous copies, checked for shape, finiteness and labels.

        Raises
        ------
        InputError
            naming the array and ``source`` when shapes disagree with each
            other or with ``data.d``, values are complex, NaN or infinite, or
            labels are not in {-1, +1} under the logistic loss.
        """
        arrays = {}
        for name in FIELDS:
            a = real_array(getattr(self, name), f"{source}: {name}")
            deep = getattr(config.model, "kind", "two_layer") == "deep_linear"
            want = 2 if name.startswith("x") or deep else 1      # deep linear: y is (n, k)
            if a.ndim != want:
                raise InputError(f"{source}: {name} must have {want} dimensions, got shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise InputError(f"{source}: {name} contains NaN or infinite values")
            arrays[name] = a
        for split in ("train", "test"):
            _check_split(arrays, split, config, source)
        teacher = None if self.teacher is None else real_array(self.teacher, f"{source}: teacher")
        return Dataset(teacher=teacher, corrupted=self._checked_corrupted(source), **arrays)

    def _checked_corrupted(self, source):
        if self.corrupted is None:
            return None
        idx = real_array(self.corrupted, f"{source}: corrupted", np.int64)
        n = len(self.y_train)
        if idx.ndim != 1 or np.any(idx < 0) or np.any(idx >= n) or len(np.unique(idx)) != len(idx):
            raise InputError(f"{source}: corrupted must be distinct indices in [0, {n})")
        return idx


def _check_split(arrays, split, config, source):
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    d = config.data.d
    if x.shape[0] != y.shape[0]:
        raise InputError(
            f"{source}: x_{split} has {x.shape[0]} rows but y_{split} has {y.shape[0]}")
    if x.shape[1] != d:
        raise InputError(f"{source}: x_{split} has {x.shape[1]} columns but data.d = {d}")
    if x.shape[0] == 0:
        raise InputError(f"{source}: x_{split} is empty")
    if config.loss.name == "logistic" and not np.all(np.abs(y) == 1.0):
        raise InputError(f"{source}: y_{split} must be in {{-1, 1}} for the logistic loss")


def make_teacher(config, rng: np.random.Generator) -> np.ndarray:
    """Teacher particles (m0, d + 1): unit-norm a_j (uniform directions), c_j = s_j or m0 s_j.

    The signs s_j alternate +1, -1, ... or are sign(N(0, 1)) draws
    (``data.teacher_signs``); c_j = m0 s_j makes the mean of eq. (1) a sum
    (``data.teacher_output = "sum"``).
    """
    dc = config.data
    m0, d = dc.teacher_m, dc.d
    a = rng.standard_normal((m0, d))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    if dc.teacher_signs == "random":
        c = np.where(rng.standard_normal(m0) >= 0.0, 1.0, -1.0)
    else:
        c = np.where(np.arange(m0) % 2 == 0, 1.0, -1.0)
    if dc.teacher_output == "sum":
        c *= m0
    return np.ascontiguousarray(np.hstack([a, c[:, None]]))


def draw_inputs(config, n: int, rng: np.random.Generator) -> np.ndarray:
    """n inputs from N(0, I_d) or uniform on the unit sphere (``data.input``), NumPy's generator."""
    x = rng.standard_normal((n, config.data.d))
    if config.data.input == "sphere":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def corrupt_labels(y: np.ndarray, p: float, rng: np.random.Generator):
    """Replace the labels of round(p n) points by labels from the shuffled label set.

    Parameters
    ----------
    y : ndarray (n,)
        Training labels (left unchanged).
    p : float in [0, 1]
        Fraction of labels to corrupt.
    rng : numpy.random.Generator

    Returns
    -------
    (y_corrupted, indices) : the new labels and the sorted corrupted indices.
    """
    n = len(y)
    k = int(round(p * n))
    idx = np.sort(rng.choice(n, size=k, replace=False))
    out = y.copy()
    out[idx] = y[rng.permutation(n)[:k]]
    return out, idx.astype(np.int64)


def make_dataset(config, rng: np.random.Generator) -> Dataset:
    """The dataset of ``config`` (kinds ``teacher``, ``random_labels``, ``file``,
    ``linear_teacher``: :func:`meanfield.deep_linear.data.dataset`).

    With ``data.label_corruption > 0`` the training labels are corrupted by
    :func:`corrupt_labels` from a stream of its own, so that everything else
    is the same as without corruption.
    """
    dc = config.data
    if dc.kind == "linear_teacher":
        from .deep_linear.data import dataset
        return dataset(config, rng)
    data = load_dataset(dc.path, config) if dc.kind == "file" else _generate(config, rng)
    if dc.label_corruption > 0.0:
        y, idx = corrupt_labels(data.y_train, dc.label_corruption, rng.spawn(1)[0])
        data = Dataset(data.x_train, y, data.x_test, data.y_test, data.teacher, idx)
    return data


def _generate(config, rng) -> Dataset:
    dc = config.data
    # independent streams, so that the teacher and the test set do not depend on n_train
    teacher_rng, train_rng, test_rng = rng.spawn(3)
    x_train = draw_inputs(config, dc.n_train, train_rng)
    x_test = draw_inputs(config, dc.n_test, test_rng)
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
    x = draw_inputs(config, n, rng)
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
        arrays = _read_npz(path) if path.suffix == ".npz" else _read_h5(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"data.path {path}: cannot read it ({exc})") from None
    missing = [k for k in FIELDS if k not in arrays]
    if missing:
        raise InputError(f"data.path {path}: missing array(s) {', '.join(missing)}")
    return Dataset(**arrays).validated(config, source=f"data.path {path}")


def _read_npz(path: Path) -> dict:
    if not zipfile.is_zipfile(path):
        raise ValueError("not a .npz (zip) archive")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in FIELDS if k in z}


def _read_h5(path: Path) -> dict:
    import h5py
    with h5py.File(path, "r") as h:
        group = h["meanfield/data"] if "meanfield/data" in h else h
        return {k: group[k][()] for k in FIELDS if isinstance(group.get(k), h5py.Dataset)}
