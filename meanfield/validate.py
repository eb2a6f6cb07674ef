"""Checks of array and scalar arguments shared by the analysis tools.

Each check returns the value in the form the caller computes with (C-contiguous float64
arrays, floats) or raises :class:`~meanfield.errors.InputError` with one message naming
the argument at fault.
"""

from __future__ import annotations

import math

import numpy as np

from . import activations
from .errors import InputError

__all__ = ["matrix", "points", "activation", "layout", "same_shape", "positive",
           "nonnegative_int", "choice", "square"]


def matrix(name, value, cols=None):
    """``value`` as a C-contiguous 2-D float64 array, optionally with ``cols`` columns.

    Examples
    --------
    >>> matrix("X", [[1, 2]]).dtype
    dtype('float64')
    >>> matrix("X", [1, 2])
    Traceback (most recent call last):
    ...
    meanfield.errors.InputError: X must be a 2-D array, got shape (2,)
    """
    try:
        a = np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} is not a numeric array") from None
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D array, got shape {a.shape}")
    if cols is not None and a.shape[1] != cols:
        raise InputError(f"{name} must have {cols} columns, got shape {a.shape}")
    return a


def square(name, value):
    """``value`` as a square 2-D float64 array (see :func:`matrix`)."""
    a = matrix(name, value)
    if a.shape[0] != a.shape[1]:
        raise InputError(f"{name} must be square, got shape {a.shape}")
    return a


def points(name, value):
    """A non-empty (n, D) array of finite points; a 1-D array is n points on the line."""
    try:
        P = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} is not a numeric array") from None
    if P.ndim == 1:
        P = P[:, None]
    if P.ndim != 2 or P.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty (n, D) array of points, "
                         f"got shape {P.shape}")
    if not np.all(np.isfinite(P)):
        raise InputError(f"{name} holds NaN or infinite values")
    return P


def activation(name):
    """``name`` if it is an activation of :mod:`meanfield.activations`."""
    if not isinstance(name, str) or name not in activations.IDS:
        raise InputError(
            f"unknown activation {name!r} (known: {', '.join(activations.NAMES)})")
    return name


def layout(P, X, pname="P", xname="X"):
    """Check particles P (m, D) against inputs X (n, d); return (P, X, bias).

    ``bias`` is True when D = d + 2 (columns a, b, c) and False when D = d + 1.
    """
    P = matrix(pname, P)
    X = matrix(xname, X)
    d, D = X.shape[1], P.shape[1]
    if D - d not in (1, 2):
        raise InputError(
            f"{pname} has {D} columns but {xname} has {d}: expected d + 1 (columns a, c) "
            f"or d + 2 (columns a, b, c)")
    return P, X, D - d == 2


def same_shape(P, P0, names=("P", "P0")):
    """Raise unless the two arrays have the same shape."""
    if P.shape != P0.shape:
        raise InputError(f"{names[0]} has shape {P.shape} but {names[1]} has shape {P0.shape}")


def positive(name, value, allow_zero=False):
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0.0 or (v == 0.0 and not allow_zero):
        raise InputError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, "
                         f"got {value!r}")
    return v


def nonnegative_int(name, value):
    """``value`` as an int >= 0 (booleans refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 0:
        raise InputError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def choice(name, value, allowed):
    """``value`` if it is one of ``allowed``.

    Examples
    --------
    >>> choice("layers", "both", ("both", "first"))
    'both'
    """
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value
