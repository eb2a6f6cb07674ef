r"""Forward pass and particle velocity of the network and of its tangent model.

For particles :math:`w_i = (a_i, b_i, c_i)` stored as the rows of ``P``
(columns a, [b,] c; the bias column is present iff ``P.shape[1] == d + 2``)

.. math::

    f(x_j) = \frac{\alpha}{m} \sum_i c_i\, s(z_{ij}), \qquad z_{ij} = a_i \cdot x_j + b_i,

and, with :math:`g_j = \ell'(f(x_j), y_j) / (\alpha n)`, the velocity
:math:`v_i = -m \nabla_{w_i} J` is

.. math::

    v_{c,i} = -\sum_j g_j s(z_{ij}) - \lambda c_i, \quad
    v_{a,i} = -c_i \sum_j g_j s'(z_{ij}) x_j - \lambda a_i, \quad
    v_{b,i} = -c_i \sum_j g_j s'(z_{ij}) - \lambda b_i.

The tangent model :math:`Tf(w) = f(w_0) + (w - w_0) \cdot \nabla f(w_0)` is

.. math::

    Tf(x_j) = \frac{\alpha}{m} \sum_i \left[c_i\, s(z^0_{ij})
              + c^0_i\, s'(z^0_{ij})\, (\Delta a_i \cdot x_j + \Delta b_i)\right],

and its velocity is the one above with :math:`z^0` in place of z, :math:`c^0`
in place of the multiplying c, and g taken at Tf.  Both share one
implementation: features (A, b) at w (or w0), output weights c, and for the
tangent model the displacement (dA, db) and c0.

Three paths compute the same sums (:func:`meanfield.kernels.tiles.tile_shape`
chooses).  Small systems (n m d < ``DIRECT_MAX_WORK``) run plain loops: no BLAS
call, no thread launch, no allocation (every buffer lives in a :func:`workspace`
that the caller allocates once per chunk).  Larger ones tile over the data, and
for large m over the particles too, spending a step in GEMMs with the
elementwise work fused into parallel passes over tile rows (see
:mod:`meanfield.kernels.tiles`); memory beyond the inputs is O(tile), never
O(n m).
"""

import numpy as np

from .elementwise import act_rows, dot_rows, loss_deriv, loss_value
from .jit import jit, jit_inline, jit_parallel
from .structs import Model, Workspace
from .tiles import (B_ROW, C_ROW, CM_ROW, DB_ROW, DIRECT_MAX_WORK, lanes, one_pass,
                    tile_shape, two_passes)


@jit
def tile_rows(n, m, d):
    """Rows of data per tile on the GEMM paths, or 0 for the plain-loop path."""
    return tile_shape(n, m, d)[0]


@jit
def workspace(n, m, d, tangent):
    """Every buffer that an evaluation on n inputs needs, as a :class:`Workspace`.

    For outputs only (:func:`model_outputs`), :func:`output_workspace` is enough.

    Fields: ``F`` (4, m), rows biases b, output weights c, bias displacement db and
    the multiplier cm of the velocity (c, or c0 for the tangent model) (see
    :mod:`meanfield.kernels.tiles`); the accumulator, transposed, ``acc`` =
    [sum_j g_j s' x_j, sum_j g_j s', sum_j g_j s]^T (d + 2, m); the tile ``S`` (t, mb)
    (Z, then H = g_j s'(z), in place) and for the tangent model ``DZ`` = X_t dA^T
    (t, mb); per lane of the row pass the derivative row ``H`` (L, mb) and the partial
    sums ``part`` (L, 2, mb) of sum_j g_j s' and sum_j g_j s (empty without the
    accumulator); ``dA`` the displacement of the input weights (m, d) (tangent model
    only); ``fl``, ``g`` and ``f`` the loss, g and output of each row (n,).  (The
    transposed accumulator makes the backward GEMM ``acc = X_t^T H``, with the big tile
    as its untransposed right operand: the fast form for BLAS.)

    On the plain-loop path every buffer is a block of rows of one array ``B``
    (:func:`_direct_layout`: A^T, dA^T, F, acc, S, H, DZ, with S, H and DZ (n, m)) and
    the other fields are views of it; ``B`` is empty on the GEMM paths.  (One array:
    taking an array out of a structure costs a reference count, which a step of a
    small system would pay once per buffer.)
    """
    return _workspace(n, m, d, tangent, True)


@jit
def output_workspace(n, m, d, tangent):
    """A :func:`workspace` without the accumulator on the GEMM paths (empty ``acc``):
    enough for :func:`model_outputs`, and (d + 2) m entries smaller."""
    return _workspace(n, m, d, tangent, False)


@jit
def _workspace(n, m, d, tangent, grad):
    t, mb = tile_shape(n, m, d)
    if t == 0:
        oA, odA, oF, oacc, oS, oH, oDZ, rows = _direct_layout(n, d, tangent)
        B = np.zeros((rows, m))
        return Workspace(B, B[oF:oF + 4], B[oacc:oS], B[oS:oH], B[oH:oDZ], B[oDZ:rows],
                         B[odA:oF], np.empty((0, 2, 0)), np.empty(1), np.empty(1), np.empty(1))
    L = lanes(t)
    return Workspace(np.empty((0, 0)), np.zeros((4, m)), np.empty((d + 2 if grad else 0, m)),
                     np.empty((t, mb)), np.empty((L, mb)), np.empty((t if tangent else 0, mb)),
                     np.empty((m, d) if tangent else (0, d)),
                     np.empty((L if grad else 0, 2, mb)), np.empty(n), np.empty(n),
                     np.empty(n))


@jit_inline
def _particle_rows(P, Q, tangent, F, oF, d):
    """Rows oF, ... of ``F``: b, c, db, cm from the particles (B_ROW, ... order).

    Network (Q = P): features at w, cm = c.  Tangent model: features at w0 = Q,
    db = b - b0, cm = c0.
    """
    m, D = P.shape
    bias = D == d + 2
    for i in range(m):
        F[oF + B_ROW, i] = Q[i, d] if bias else 0.0
        F[oF + C_ROW, i] = P[i, D - 1]
        F[oF + CM_ROW, i] = Q[i, D - 1]
        if tangent:
            F[oF + DB_ROW, i] = P[i, d] - Q[i, d] if bias else 0.0


@jit_inline
def _velocity(P, F, cm_row, acc, acc_row, d, lam, V):
    """V = -m grad_w J from the g-weighted sums in rows acc_row, ... of ``acc`` (cm, the
    multiplier of the velocity, in row cm_row of ``F``)."""
    m, D = P.shape
    for i in range(m):
        cm = F[cm_row, i]
        for k in range(d):
            V[i, k] = -cm * acc[acc_row + k, i] - lam * P[i, k]
        if D == d + 2:
            V[i, d] = -cm * acc[acc_row + d, i] - lam * P[i, d]
        V[i, D - 1] = -acc[acc_row + d + 1, i] - lam * P[i, D - 1]


# ----------------------------------------------------------------- plain-loop path
@jit
def _direct_layout(n, d, tangent):
    """First rows of A^T, dA^T, F, acc, S, H and DZ in the plain-loop buffer, and its
    number of rows (dA^T and DZ are empty unless ``tangent``)."""
    oF = 2 * d if tangent else d
    oacc = oF + 4
    oS = oacc + d + 2
    return 0, d, oF, oacc, oS, oS + n, oS + 2 * n, oS + 2 * n + (n if tangent else 0)


@jit_inline
def _transposed(P, model, B, oA, odA):
    """Rows oA, ... of ``B``: A^T (at w, or at w0 for the tangent model); rows odA, ...:
    (A - A0)^T (tangent model)."""
    d = odA - oA
    Q = model.P0 if model.tangent else P
    for k in range(d):
        for i in range(P.shape[0]):
            B[oA + k, i] = Q[i, k]
            if model.tangent:
                B[odA + k, i] = P[i, k] - Q[i, k]


@jit_inline
def _preact(B, oA, X, j, r, ob):
    """Row r of ``B`` = A^T X[j] + row ob, A^T in rows oA, ... (the loops over particles are
    innermost, so that they vectorise)."""
    m = B.shape[1]
    for i in range(m):
        B[r, i] = B[ob, i]
    for k in range(X.shape[1]):
        xk = X[j, k]
        for i in range(m):
            B[r, i] += B[oA + k, i] * xk


@jit_inline
def _accumulate_row(g, X, j, B, rs, rh, oacc):
    """acc += g [X[j]; 1] H^T and its last row += g S, for S, H rows rs, rh of ``B``."""
    d = X.shape[1]
    m = B.shape[1]
    for k in range(d):
        gx = g * X[j, k]
        for i in range(m):
            B[oacc + k, i] += gx * B[rh, i]
    for i in range(m):
        B[oacc + d, i] += g * B[rh, i]
        B[oacc + d + 1, i] += g * B[rs, i]


@jit
def _direct_features(P, model, X, B):
    """Plain-loop path, first half: the particle rows, then S = s(Z), H = s'(Z) for every
    input row (and the tangent term DZ = s'(Z0) (X dA^T + db)).

    Each phase runs over all rows before the next starts: reading a short row back
    right after writing it stalls on the stores still in flight."""
    n, d = X.shape
    tangent = model.tangent
    oA, odA, oF, oacc, oS, oH, oDZ, rows = _direct_layout(n, d, tangent)
    _particle_rows(P, model.P0 if tangent else P, tangent, B, oF, d)
    _transposed(P, model, B, oA, odA)
    for j in range(n):
        _preact(B, oA, X, j, oS + j, oF + B_ROW)
        if tangent:
            _preact(B, odA, X, j, oDZ + j, oF + DB_ROW)
    act_rows(model.act, B, oS, B, oH, n)
    if tangent:
        for j in range(n):
            for i in range(B.shape[1]):
                B[oDZ + j, i] *= B[oH + j, i]


@jit
def _direct(P, model, X, y, V, B, grad, out):
    """Plain-loop path, one buffer ``B`` (:func:`_direct_layout`): outputs into ``out``
    (forward), or the risk sum_j loss_j and the velocity into V (``grad``)."""
    n, d = X.shape
    loss, tangent = model.loss, model.tangent
    oA, odA, oF, oacc, oS, oH, oDZ, rows = _direct_layout(n, d, tangent)
    _direct_features(P, model, X, B)
    scale = model.alpha / P.shape[0]
    gscale = 1.0 / (model.alpha * max(n, 1))
    for k in range(oacc, oS):
        for i in range(B.shape[1]):
            B[k, i] = 0.0
    total = 0.0
    for j in range(n):
        fj = dot_rows(B, oF + C_ROW, B, oS + j)
        if tangent:
            fj += dot_rows(B, oF + CM_ROW, B, oDZ + j)
        f = scale * fj
        if grad:
            total += loss_value(loss, f, y[j])
            _accumulate_row(loss_deriv(loss, f, y[j]) * gscale, X, j, B, oS + j, oH + j, oacc)
        else:
            out[j] = f
    if grad:
        _velocity(P, B, oF + CM_ROW, B, oacc, d, model.lam, V)
    return total


# ------------------------------------------------------------------- entry points
@jit
def direct_risk_and_velocity(P, model, X, y, V, B):
    """:func:`model_risk_and_velocity` on the plain-loop path, ``B`` its workspace's ``B``
    (for loops over many small steps, which take ``B`` out of the workspace once)."""
    return _direct(P, model, X, y, V, B, True, y) / X.shape[0]


@jit
def _displacement(P, model, dA):
    """dA = A - A0 (GEMM paths, tangent model)."""
    if model.tangent:
        Q = model.P0
        for i in range(P.shape[0]):
            for k in range(dA.shape[1]):
                dA[i, k] = P[i, k] - Q[i, k]


@jit_parallel
def _gemm_paths(P, model, X, y, ws, grad, out):
    """The GEMM paths (arguments and result as :func:`~.tiles.one_pass`): the particle
    rows of ``ws.F`` and the displacement, then one pass or two (:func:`tile_shape`)."""
    _particle_rows(P, model.P0 if model.tangent else P, model.tangent, ws.F, 0, X.shape[1])
    _displacement(P, model, ws.dA)
    if ws.S.shape[1] == P.shape[0]:
        return one_pass(P, model, X, y, ws, grad, out)
    return two_passes(P, model, X, y, ws, grad, out)


@jit_parallel
def model_outputs(P, model, X, ws, out):
    """Outputs of the network (or of its tangent model at ``model.P0``) at the rows of X.

    Parameters
    ----------
    P : (m, D) particles; model : :class:`Model`; X : (n, d) C-contiguous inputs;
    ws : a :func:`workspace` or :func:`output_workspace` for (n, m, d, model.tangent);
    out : (n,) output.
    """
    B = ws.B
    if B.shape[0] > 0:
        _direct(P, model, X, out, P, B, False, out)
        return
    _gemm_paths(P, model, X, out, ws, False, out)


@jit_parallel
def model_risk_and_velocity(P, model, X, y, V, ws):
    r"""Risk R on (X, y) of the network (or tangent model); writes v = -m grad_w J into V.

    .. math:: v_i = -m \nabla_{w_i} J, \quad J = R / \alpha^2 + (\lambda / m) \sum_i |w_i|^2 / 2

    Parameters
    ----------
    P : (m, D) particles; model : :class:`Model`; X : (n, d) C-contiguous inputs;
    y : (n,) labels; V : (m, D) output; ws : a :func:`workspace` for (n, m, d, model.tangent).

    Returns
    -------
    float
        R = mean_j loss(f(x_j), y_j).
    """
    n, d = X.shape
    B = ws.B
    if B.shape[0] > 0:
        return direct_risk_and_velocity(P, model, X, y, V, B)
    total = _gemm_paths(P, model, X, y, ws, True, y)
    _velocity(P, ws.F, CM_ROW, ws.acc, 0, d, model.lam, V)
    return total / n


@jit
def mean_loss(f, y, loss):
    """mean_j loss(f_j, y_j)."""
    total = 0.0
    for j in range(f.shape[0]):
        total += loss_value(loss, f[j], y[j])
    return total / f.shape[0]


@jit_parallel
def _outputs(P, model, X):
    X = np.ascontiguousarray(X)
    n, d = X.shape
    out = np.empty(n)
    model_outputs(P, model, X, output_workspace(n, P.shape[0], d, model.tangent), out)
    return out


@jit_parallel
def model_risk(P, model, X, y):
    """Risk R = mean_j loss(f(x_j), y_j) of the network (or tangent model) on (X, y)."""
    return mean_loss(_outputs(P, model, X), y, model.loss)


@jit
def _model(P0, tangent, act, loss, alpha, lam):
    """A :class:`Model` with the canonical field types, from compiled code."""
    return Model(np.int64(act), np.int64(loss), np.float64(alpha), np.float64(lam),
                 tangent, P0)


@jit_parallel
def forward(P, X, act, alpha):
    """Network output f(x_j) for every row of ``X`` (eq. 1).

    Parameters
    ----------
    P : (m, D) float64 particles; X : (n, d) float64 inputs;
    act : activation id; alpha : output scale.
    """
    return _outputs(P, _model(P, False, act, 0, alpha, 0.0), X)


@jit_parallel
def tangent_forward(P, P0, X, act, alpha):
    """Tangent-model output T f(w)(x_j) = f(w0)(x_j) + (w - w0) . grad f(w0)(x_j)."""
    return _outputs(P, _model(P0, True, act, 0, alpha, 0.0), X)


@jit_parallel
def risk_and_velocity(P, X, y, act, loss, alpha, lam, V):
    """Empirical risk R = mean_j loss(f(x_j), y_j); writes v = -m grad J into ``V``.

    Parameters
    ----------
    P : (m, D) particles; X : (n, d); y : (n,); act, loss : ids;
    alpha : output scale; lam : weight decay; V : (m, D) output.

    Returns
    -------
    float
        R(f) on (X, y) at the current particles.
    """
    X = np.ascontiguousarray(X)
    n, d = X.shape
    return model_risk_and_velocity(P, _model(P, False, act, loss, alpha, lam), X, y, V,
                                   workspace(n, P.shape[0], d, False))


@jit_parallel
def risk(P, X, y, act, loss, alpha):
    """Empirical risk R = mean_j loss(f(x_j), y_j)."""
    return model_risk(P, _model(P, False, act, loss, alpha, 0.0), X, y)
