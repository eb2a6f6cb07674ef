r"""Scaling regimes (alpha) and initialisation of the particles.

The output scale of eq. (1) is :math:`\alpha = \kappa m^\gamma` with
:math:`\gamma = 0` in the ``mean_field`` regime (alpha = kappa, O(1)),
:math:`\gamma = 1/2` in the ``ntk`` regime (the standard 1/sqrt(m)
parameterisation) and :math:`\gamma = 0` with a large kappa in the ``lazy``
regime; an explicit alpha overrides the rule.

Initialisation draws each particle :math:`w = \tau (a, b, c)` with
:math:`a \sim N(0, I_d / d)` (``gaussian``), :math:`N(0, I_d)` (``standard``,
entrywise N(0, 1) as in Chizat, Oyallon & Bach's scripts) or uniform on the
unit sphere (``sphere``), :math:`b \sim N(0, 1)` or 0, and :math:`c \sim N(0, 1)`,
uniform on {-1, +1} (``sign``), U(0, 1) (``uniform``) or 0.
Symmetric ("doubled") initialisation draws m/2 particles and stores each
next to its copy with c negated, rows (a, b, c), (a, b, -c), so that the
initial output f(w0, x) = 0 exactly (the pairs cancel term by term in the
forward sum).

``init.path = FILE`` starts from stored particles instead: a ``.npy`` array of
shape (m, D), or a run file, whose last snapshot is taken (``FILE:K`` takes
snapshot K, negative counting from the last).  The array must be real, finite
and of the config's shape (m, D); ``a``, ``b``, ``c``, ``tau`` and
``symmetric`` are then not used.
"""

from pathlib import Path

import numpy as np

from .errors import InputError

REGIMES = {"mean_field": 0.0, "ntk": 0.5, "lazy": 0.0}
"""Exponent gamma of alpha = kappa * m**gamma for each regime."""


def resolve_alpha(regime: str, kappa: float, m: int, alpha=None) -> float:
    """alpha = ``alpha`` if given, else kappa * m**gamma(regime).

    Examples
    --------
    >>> resolve_alpha("ntk", 2.0, 100)
    20.0
    """
    if alpha is not None:
        return float(alpha)
    return float(kappa * m ** REGIMES[regime])


def init_particles(config, rng: np.random.Generator) -> np.ndarray:
    """Initial particles (m, D) of ``config``: drawn from ``rng``, or read from ``init.path``.

    Parameters
    ----------
    config : Config
        Uses ``model.m``, ``model.bias``, ``data.d`` and the ``[init]`` section.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (m, D), C-contiguous float64, columns a, [b,] c.
    """
    init, m, d, bias = config.init, config.model.m, config.data.d, config.model.bias
    if init.path:
        return load_particles(init.path, config)
    k = m // 2 if init.symmetric else m
    a = rng.standard_normal((k, d))
    if init.a == "gaussian":
        a /= np.sqrt(d)
    elif init.a == "sphere":
        a /= np.linalg.norm(a, axis=1, keepdims=True)
    cols = [a]
    if bias:
        b = rng.standard_normal(k) if init.b == "gaussian" else np.zeros(k)
        cols.append(b[:, None])
    cols.append(_draw_c(init.c, k, rng)[:, None])
    base = init.tau * np.hstack(cols)
    if not init.symmetric:
        return np.ascontiguousarray(base)
    P = np.empty((m, base.shape[1]))
    P[0::2] = base
    P[1::2] = base
    P[1::2, -1] *= -1.0
    return P


def _draw_c(kind: str, k: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "gaussian":
        return rng.standard_normal(k)
    if kind == "sign":
        return rng.choice([-1.0, 1.0], size=k)
    if kind == "uniform":
        return rng.random(k)
    return np.zeros(k)


def load_particles(spec: str, config) -> np.ndarray:
    """Particles (m, D) from ``FILE`` (.npy or a run file) or ``RUNFILE:SNAPSHOT``.

    Raises
    ------
    InputError
        naming ``init.path`` when the file is missing or unreadable, the
        snapshot does not exist, or the array is not real, finite and (m, D).
    """
    from .config.tomlio import split_snapshot
    name, index = split_snapshot(spec)
    path, where = Path(name), f"init.path {spec}"
    if not path.is_file():
        raise InputError(f"{where}: no such file")
    if path.suffix == ".npy":
        if index is not None:
            raise InputError(f"{where}: a snapshot index needs a run file, not a .npy file")
        try:
            P = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{where}: not a readable .npy file ({exc})") from None
    else:
        P = _run_snapshot(path, index, where)
    return _checked_particles(P, config, where)


def _run_snapshot(path, index, where) -> np.ndarray:
    from .storage import open_run
    run = open_run(path)
    try:
        n = len(run.steps)
        k = -1 if index is None else index
        if not -n <= k < n:
            raise InputError(f"{where}: no snapshot {k} (the run has {n})")
        return run.particles(k)
    except (OSError, KeyError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{where}: cannot read its particles ({exc})") from None
    finally:
        run.close()


def _checked_particles(P, config, where) -> np.ndarray:
    from .data import real_array
    P = real_array(P, where)
    m, D = config.model.m, config.dim
    if P.shape != (m, D):
        raise InputError(f"{where}: particles of shape {P.shape}, but the config has "
                         f"model.m = {m} and D = {D} (data.d = {config.data.d}, "
                         f"model.bias = {str(config.model.bias).lower()})")
    if not np.all(np.isfinite(P)):
        raise InputError(f"{where}: particles contain NaN or infinite values")
    return P.copy()
