"""Naive NumPy reference for the mathematics of ``meanfield`` (DESIGN.md, section 1).

Everything here is written straight from the equations, for clarity rather than speed,
and deliberately does not import the ``meanfield`` package: the package's kernels are
tested against this module, and this module is tested against finite differences of
its own objective (``tests/test_reference.py``).

Conventions
-----------
A network is a set of ``m`` particles ``w_i = (a_i, b_i, c_i)`` stored as the rows of a
float64 array ``P`` of shape ``(m, D)``:

* ``bias=True``:  ``D = d + 2``, columns ``[a (d columns), b, c]``;
* ``bias=False``: ``D = d + 1``, columns ``[a (d columns), c]``.

Inputs ``X`` have shape ``(n, d)`` and targets ``y`` shape ``(n,)``.

.. math::

    f(x) = \\frac{\\alpha}{m} \\sum_i c_i\\, s(a_i \\cdot x + b_i)

    R(f) = \\frac{1}{n} \\sum_j \\ell(f(x_j), y_j)

    J(P) = \\frac{R(f)}{\\alpha^2} + \\frac{\\lambda}{m} \\sum_i \\frac{|w_i|^2}{2}

    v_i = -m\\, \\nabla_{w_i} J, \\qquad P \\leftarrow P + \\mathrm{lr}\\; v(P)

Writing ``phi(w, x) = c s(a . x + b)`` and ``z_ij = a_i . x_j + b_i``, the chain rule gives

.. math::

    v_i = -\\frac{1}{\\alpha} \\frac{1}{n} \\sum_j \\ell'(f(x_j), y_j)\\,
          \\nabla_w \\phi(w_i, x_j) \\; - \\; \\lambda w_i,

    \\nabla_a \\phi = c\\, s'(z)\\, x, \\quad
    \\nabla_b \\phi = c\\, s'(z), \\quad
    \\nabla_c \\phi = s(z).
"""

import numpy as np
from scipy.special import erf, expit

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "split",
    "forward",
    "risk",
    "objective",
    "velocity",
    "fd_minus_m_grad",
    "fd_velocity",
    "gd",
    "teacher_forward",
    "tangent_forward",
    "tangent_objective",
    "relu_population_velocity",
    "dl_end_to_end", "dl_loss", "dl_gradient", "dl_layer_gradients", "dl_preconditioner",
    "dl_single_row_flow", "dl_gd", "dl_end_to_end_flow", "dl_adagrad", "dl_adam",
    "dl_balancedness",
    "arccos_kernels", "arcsine_kernels", "analytic_ntk", "h_inf", "w2_1d", "sliced_w2",
    "published_gd", "published_loss", "ggn_jacobian", "ggn",
]


# --------------------------------------------------------------------------------------
# Activations s(z) and their derivatives s'(z)
# --------------------------------------------------------------------------------------

def _relu(z):
    return np.maximum(z, 0.0)


def _relu_prime(z):
    # Convention: relu'(0) = 0, i.e. the derivative is the indicator 1{z > 0}.
    return (z > 0.0).astype(np.float64)


def _sigmoid(z):
    return expit(z)


def _sigmoid_prime(z):
    s = expit(z)
    return s * (1.0 - s)


def _tanh(z):
    return np.tanh(z)


def _tanh_prime(z):
    t = np.tanh(z)
    return 1.0 - t * t


def _softplus(z):
    # log(1 + e^z), computed without overflow.
    return np.logaddexp(0.0, z)


def _softplus_prime(z):
    return expit(z)


def _erf(z):
    return erf(z)


def _erf_prime(z):
    return 2.0 / np.sqrt(np.pi) * np.exp(-z * z)


def _linear(z):
    return np.asarray(z, dtype=np.float64) * 1.0


def _linear_prime(z):
    return np.ones_like(z, dtype=np.float64)


#: name -> (s, s'), both elementwise on float64 arrays.
ACTIVATIONS = {
    "relu": (_relu, _relu_prime),
    "sigmoid": (_sigmoid, _sigmoid_prime),
    "tanh": (_tanh, _tanh_prime),
    "softplus": (_softplus, _softplus_prime),
    "erf": (_erf, _erf_prime),
    "linear": (_linear, _linear_prime),
}


# --------------------------------------------------------------------------------------
# Losses l(f, y) and their derivatives dl/df
# --------------------------------------------------------------------------------------

def _squared(f, y):
    return 0.5 * (f - y) ** 2


def _squared_prime(f, y):
    return f - y


def _logistic(f, y):
    # log(1 + exp(-y f)), computed without overflow.
    return np.logaddexp(0.0, -y * f)


def _logistic_prime(f, y):
    # d/df log(1 + exp(-y f)) = -y * sigmoid(-y f)
    return -y * expit(-y * f)


#: name -> (loss(f, y), dloss/df(f, y)), both elementwise.
LOSSES = {
    "squared": (_squared, _squared_prime),
    "logistic": (_logistic, _logistic_prime),
}


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------

def split(P, d, bias):
    """Split a particle array into its input weights, biases and output weights.

    Parameters
    ----------
    P : ndarray, shape (m, D)
        Particles; ``D = d + 2`` with columns ``[a, b, c]`` if ``bias`` else
        ``D = d + 1`` with columns ``[a, c]``.
    d : int
        Input dimension.
    bias : bool
        Whether the particles carry a bias column.

    Returns
    -------
    A : ndarray, shape (m, d)
        Input weights ``a_i``.
    b : ndarray, shape (m,)
        Biases ``b_i`` (zeros when ``bias`` is False).
    c : ndarray, shape (m,)
        Output weights ``c_i``.
    """
    P = np.asarray(P, dtype=np.float64)
    expected = d + 2 if bias else d + 1
    if P.ndim != 2 or P.shape[1] != expected:
        raise ValueError(f"P has shape {P.shape}, expected (m, {expected})")
    A = P[:, :d]
    b = P[:, d] if bias else np.zeros(P.shape[0])
    c = P[:, -1]
    return A, b, c


def _preactivations(P, X, bias):
    """Return ``Z[i, j] = a_i . x_j + b_i`` (shape (m, n)) and the split of ``P``."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    A, b, c = split(P, d, bias)
    Z = A @ X.T + b[:, None]
    return Z, A, b, c


def forward(P, X, activation, alpha, bias):
    """Network output ``f(x) = (alpha / m) sum_i c_i s(a_i . x + b_i)``.

    Parameters
    ----------
    P : ndarray, shape (m, D)
        Particles.
    X : ndarray, shape (n, d)
        Inputs.
    activation : str
        Key of :data:`ACTIVATIONS`.
    alpha : float
        Output scale.
    bias : bool
        Whether ``P`` has a bias column.

    Returns
    -------
    f : ndarray, shape (n,)
    """
    s, _ = ACTIVATIONS[activation]
    Z, _, _, c = _preactivations(P, X, bias)
    m = Z.shape[0]
    return (alpha / m) * (c @ s(Z))


def risk(P, X, y, activation, loss, alpha, bias):
    """Empirical risk ``R(f) = mean_j loss(f(x_j), y_j)``.

    Parameters
    ----------
    P, X, activation, alpha, bias
        As in :func:`forward`.
    y : ndarray, shape (n,)
        Targets (in {-1, +1} for the logistic loss).
    loss : str
        Key of :data:`LOSSES`.

    Returns
    -------
    R : float
    """
    ell, _ = LOSSES[loss]
    f = forward(P, X, activation, alpha, bias)
    return float(np.mean(ell(f, np.asarray(y, dtype=np.float64))))


def objective(P, X, y, activation, loss, alpha, bias, weight_decay):
    """Training objective ``J(P) = R(f) / alpha^2 + (lam / m) sum_i |w_i|^2 / 2``.

    Parameters
    ----------
    P, X, y, activation, loss, alpha, bias
        As in :func:`risk`.
    weight_decay : float
        ``lam``; the penalty covers every coordinate of every particle (a, b and c).

    Returns
    -------
    J : float
    """
    P = np.asarray(P, dtype=np.float64)
    m = P.shape[0]
    R = risk(P, X, y, activation, loss, alpha, bias)
    penalty = (weight_decay / m) * 0.5 * np.sum(P * P)
    return float(R / alpha**2 + penalty)


def velocity(P, X, y, activation, loss, alpha, bias, weight_decay):
    """Particle velocities ``v_i = -m grad_{w_i} J`` from the analytic chain rule.

    With ``g_j = loss'(f(x_j), y_j)`` and ``z_ij = a_i . x_j + b_i``:

    * ``v_a_i = -(1/alpha) mean_j g_j c_i s'(z_ij) x_j - lam a_i``
    * ``v_b_i = -(1/alpha) mean_j g_j c_i s'(z_ij)     - lam b_i``  (if bias)
    * ``v_c_i = -(1/alpha) mean_j g_j s(z_ij)          - lam c_i``

    (The ``alpha / m`` of ``f``, the ``1 / alpha^2`` of ``J`` and the ``-m`` of the
    velocity combine into ``-1 / alpha``.)

    Parameters
    ----------
    P, X, y, activation, loss, alpha, bias, weight_decay
        As in :func:`objective`.

    Returns
    -------
    V : ndarray, shape (m, D)
    """
    P = np.asarray(P, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    s, s_prime = ACTIVATIONS[activation]
    _, ell_prime = LOSSES[loss]
    n, d = X.shape
    m = P.shape[0]
    A, b, c = split(P, d, bias)

    f = forward(P, X, activation, alpha, bias)
    g = ell_prime(f, y)  # dloss/df at each data point, shape (n,)

    V = np.empty_like(P)
    for i in range(m):
        z = X @ A[i] + b[i]  # (n,)
        # gradient of phi(w_i, x_j) = c_i s(z_ij) with respect to a_i, b_i, c_i
        grad_a = (c[i] * s_prime(z))[:, None] * X  # (n, d)
        grad_b = c[i] * s_prime(z)  # (n,)
        grad_c = s(z)  # (n,)
        # -m * d/dw_i [R / alpha^2] = -(1/alpha) mean_j g_j grad phi(w_i, x_j)
        V[i, :d] = -(1.0 / alpha) * np.mean(g[:, None] * grad_a, axis=0)
        if bias:
            V[i, d] = -(1.0 / alpha) * np.mean(g * grad_b)
        V[i, -1] = -(1.0 / alpha) * np.mean(g * grad_c)
        # -m * d/dw_i [(lam/m) sum |w|^2 / 2] = -lam w_i
        V[i] -= weight_decay * P[i]
    return V


def fd_minus_m_grad(J, P, h=1e-6):
    """``-m grad J(P)`` by central finite differences of any objective ``J(P)``.

    Each entry ``P[i, k]`` is perturbed by ``+-h`` in turn:
    ``V[i, k] = -m (J(P + h e_ik) - J(P - h e_ik)) / (2 h)``.

    Returns
    -------
    V : ndarray, shape (m, D)
    """
    P = np.array(P, dtype=np.float64)  # private copy, perturbed in place
    m = P.shape[0]
    V = np.empty_like(P)
    for i in range(P.shape[0]):
        for k in range(P.shape[1]):
            saved = P[i, k]
            P[i, k] = saved + h
            J_plus = J(P)
            P[i, k] = saved - h
            J_minus = J(P)
            P[i, k] = saved
            V[i, k] = -m * (J_plus - J_minus) / (2.0 * h)
    return V


def fd_velocity(P, X, y, activation, loss, alpha, bias, weight_decay, h=1e-6):
    """Velocity ``-m grad J`` by central finite differences of :func:`objective`.

    Parameters
    ----------
    P, X, y, activation, loss, alpha, bias, weight_decay
        As in :func:`objective`.
    h : float, optional
        Step of the central difference.

    Returns
    -------
    V : ndarray, shape (m, D)
    """
    return fd_minus_m_grad(
        lambda Q: objective(Q, X, y, activation, loss, alpha, bias, weight_decay), P, h)


def gd(P, X, y, activation, loss, alpha, bias, weight_decay, lr, steps):
    """Full-batch gradient descent: ``steps`` explicit Euler steps ``P <- P + lr v(P)``.

    Parameters
    ----------
    P, X, y, activation, loss, alpha, bias, weight_decay
        As in :func:`velocity`.
    lr : float
        Step size (physical time per step).
    steps : int
        Number of steps; the final physical time is ``lr * steps``.

    Returns
    -------
    P : ndarray, shape (m, D)
        The particles after ``steps`` steps (a new array; the input is untouched).
    """
    P = np.array(P, dtype=np.float64)
    for _ in range(int(steps)):
        P = P + lr * velocity(P, X, y, activation, loss, alpha, bias, weight_decay)
    return P


def teacher_forward(T, X, activation):
    """Teacher output ``f*(x) = (1/m0) sum_j c_j s(a_j . x)``.

    The teacher is stored like particles without bias (columns ``[a, c]``), with unit-norm
    ``a_j`` and ``c_j = +-1``; this is ``forward(T, X, activation, alpha=1, bias=False)``.

    Parameters
    ----------
    T : ndarray, shape (m0, d + 1)
        Teacher neurons.
    X : ndarray, shape (n, d)
        Inputs.
    activation : str
        Key of :data:`ACTIVATIONS` (the teacher's own activation).

    Returns
    -------
    f_star : ndarray, shape (n,)
    """
    return forward(T, X, activation, alpha=1.0, bias=False)


def tangent_forward(P, P0, X, activation, alpha, bias):
    """Tangent model ``T f(w) = f(w0) + (w - w0) . grad_w f(w0)`` at the inputs ``X``.

    ``grad_{w_i} f(w0)(x) = (alpha / m) (c0_i s'(z0_i) x, c0_i s'(z0_i), s(z0_i))``.
    """
    _, ds = ACTIVATIONS[activation]
    s, _ = ACTIVATIONS[activation]
    Z0, _, _, c0 = _preactivations(P0, X, bias)
    m, d = P.shape[0], X.shape[1]
    A, b, c = split(P, d, bias)
    A0, b0, _ = split(P0, d, bias)
    out = forward(P0, X, activation, alpha, bias)
    for i in range(m):
        grad_a = (c0[i] * ds(Z0[i]))[:, None] * X       # (n, d)
        grad_b = c0[i] * ds(Z0[i])
        grad_c = s(Z0[i])
        out = out + (alpha / m) * (grad_a @ (A[i] - A0[i]) + grad_b * (b[i] - b0[i])
                                   + grad_c * (c[i] - c0[i]))
    return out


def tangent_objective(P, P0, X, y, activation, loss, alpha, bias, weight_decay):
    """``J`` of eq. (2) with the tangent model in place of the network."""
    ell, _ = LOSSES[loss]
    R = np.mean(ell(tangent_forward(P, P0, X, activation, alpha, bias), y))
    m = P.shape[0]
    return R / alpha ** 2 + weight_decay / m * np.sum(P ** 2) / 2


def relu_population_velocity(P, T, alpha, weight_decay):
    """Exact population risk and velocity for relu without bias, x ~ N(0, I_d), squared loss.

    With the arc-cosine kernel of degree 1 (Cho & Saul), for the angle theta
    between u and v,

    .. math::

        \\kappa(u, v) = E[(u \\cdot x)_+ (v \\cdot x)_+]
                     = \\frac{|u||v|}{2\\pi} (\\sin\\theta + (\\pi - \\theta)\\cos\\theta),
        \\qquad
        E[1\\{u \\cdot x > 0\\}\\, x\\, (v \\cdot x)_+]
                     = \\frac{1}{2\\pi} \\Big((\\pi - \\theta) v + \\sin\\theta\\, |v| \\frac{u}{|u|}\\Big).

    The residual f - f* is :math:`\\sum_l \\omega_l (b_l \\cdot x)_+` over the
    stacked student and teacher weights, omega = (alpha c / m, -t / m0), so
    R = omega^T K omega / 2 and v_i = -(1/alpha) (E[r s(a_i x)], c_i E[r s'(a_i x) x]) - lam w_i.

    Parameters
    ----------
    P : ndarray, shape (m, d + 1)
        Student particles, columns [a, c].
    T : ndarray, shape (m0, d + 1)
        Teacher, columns [theta, t]; f*(x) = (1/m0) sum_l t_l (theta_l . x)_+.
    alpha, weight_decay : float

    Returns
    -------
    R : float
    V : ndarray, shape (m, d + 1)
    """
    m, m0 = P.shape[0], T.shape[0]
    B = np.vstack([P[:, :-1], T[:, :-1]])
    omega = np.concatenate([alpha / m * P[:, -1], -T[:, -1] / m0])
    norms = np.linalg.norm(B, axis=1)
    cos = np.clip((B @ B.T) / np.outer(norms, norms), -1.0, 1.0)
    theta = np.arccos(cos)
    K = np.outer(norms, norms) / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * cos)
    R = omega @ K @ omega / 2
    Kw = K[:m] @ omega                                  # E[r (a_i . x)_+]
    th, sn = theta[:m], np.sin(theta[:m])
    # sum_l omega_l E[1{a_i x > 0} x (b_l x)_+]
    G = ((np.pi - th) * omega) @ B + ((sn * omega) @ norms / norms[:m])[:, None] * P[:, :-1]
    G /= 2 * np.pi
    V = np.empty_like(P)
    V[:, :-1] = -(P[:, -1:] / alpha) * G - weight_decay * P[:, :-1]
    V[:, -1] = -Kw / alpha - weight_decay * P[:, -1]
    return R, V


# --------------------------------------------------------------------------------------
# Deep linear networks x -> W_N ... W_1 x (Arora, Cohen et al.); layers is [W_1, ..., W_N],
# L(W_e) = (1/(n p)) sum_i |W_e x_i - y_i|_p^p, X (n, d), Y (n, k)
# --------------------------------------------------------------------------------------

def dl_end_to_end(layers):
    """W_e = W_N ... W_1 by a plain loop."""
    w = layers[0]
    for layer in layers[1:]:
        w = layer @ w
    return w


def dl_loss(w, X, Y, p):
    """(1/(n p)) sum_i sum_c |(W_e x_i - y_i)_c|^p, sample by sample."""
    return sum(np.sum(np.abs(w @ x - y) ** p) for x, y in zip(X, Y)) / (p * len(X))


def dl_gradient(w, X, Y, p):
    """grad L(W_e) = (1/n) sum_i (|r_i|^(p-2) r_i) x_i^T, sample by sample."""
    G = np.zeros_like(w)
    for x, y in zip(X, Y):
        r = w @ x - y
        G += np.outer(np.abs(r) ** (p - 2) * r, x)
    return G / len(X)


def dl_layer_gradients(layers, X, Y, p):
    """[(W_N..W_{j+1})^T grad L(W_e) (W_{j-1}..W_1)^T for j = 1..N]."""
    G = dl_gradient(dl_end_to_end(layers), X, Y, p)
    d, k = layers[0].shape[1], layers[-1].shape[0]
    out = []
    for j in range(len(layers)):
        below = dl_end_to_end(layers[:j]) if j else np.eye(d)
        above = dl_end_to_end(layers[j + 1:]) if j + 1 < len(layers) else np.eye(k)
        out.append(above.T @ G @ below.T)
    return out


def _dl_gram_power(u, s, a):
    """(U diag(s^2) U^T)^a from a full orthogonal U and singular values s (padded with 0)."""
    s2 = np.zeros(u.shape[0])
    s2[:len(s)] = s ** 2
    return np.eye(u.shape[0]) if a == 0 else (u * s2 ** a) @ u.T


def dl_preconditioner(w, depth):
    """P(W_e) = sum_j (W W^T)^((j-1)/N) kron (W^T W)^((N-j)/N), powers from the full SVD."""
    u, s, vt = np.linalg.svd(w, full_matrices=True)
    return sum(np.kron(_dl_gram_power(u, s, (j - 1) / depth),
                       _dl_gram_power(vt.T, s, (depth - j) / depth))
               for j in range(1, depth + 1))


def dl_single_row_flow(w, g, depth):
    """-dw/dt for one output row: |w|^(2-2/N) (g + (N-1) (g.w^) w^)."""
    unit = w / np.linalg.norm(w)
    return np.linalg.norm(w) ** (2 - 2 / depth) * (g + (depth - 1) * (g @ unit) * unit)


def dl_gd(layers, X, Y, p, lr, steps):
    """Plain GD on every layer; returns (layers, losses before each step)."""
    layers = [w.copy() for w in layers]
    losses = []
    for _ in range(steps):
        losses.append(dl_loss(dl_end_to_end(layers), X, Y, p))
        grads = dl_layer_gradients(layers, X, Y, p)
        layers = [w - lr * g for w, g in zip(layers, grads)]
    return layers, np.array(losses)


def dl_end_to_end_flow(w, depth, X, Y, p, lr, steps):
    """Euler steps vec(W) <- vec(W) - lr P(W) vec(grad L(W)) with the Kronecker P."""
    for _ in range(steps):
        step = dl_preconditioner(w, depth) @ dl_gradient(w, X, Y, p).ravel()
        w = w - lr * step.reshape(w.shape)
    return w


def dl_adagrad(w, X, Y, p, lr, eps, steps):
    """AdaGrad: acc += G^2, W -= lr G / (sqrt(acc) + eps)."""
    acc = np.zeros_like(w)
    for _ in range(steps):
        G = dl_gradient(w, X, Y, p)
        acc = acc + G ** 2
        w = w - lr * G / (np.sqrt(acc) + eps)
    return w


def dl_adam(w, X, Y, p, lr, beta1, beta2, eps, steps):
    """Adam with bias correction, t = 1 .. steps."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):
        G = dl_gradient(w, X, Y, p)
        m = beta1 * m + (1 - beta1) * G
        v = beta2 * v + (1 - beta2) * G ** 2
        w = w - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    return w


def dl_balancedness(layers):
    """max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F (0 for one layer)."""
    return max([np.linalg.norm(b.T @ b - a @ a.T) for a, b in zip(layers, layers[1:])],
               default=0.0)


# ------------------------------------------------- kernels, Gram matrices, W2 (analysis)
def arccos_kernels(S11, S22, S12):
    """E[relu(z) relu(z')] and E[1{z > 0} 1{z' > 0}] for centred Gaussians with covariance S.

    The arc-cosine kernels (Cho & Saul 2009), angle by ``arccos``:
    ``sqrt(S11 S22) (sin t + (pi - t) cos t) / (2 pi)`` and ``(pi - t) / (2 pi)``.
    """
    norm = np.sqrt(S11 * S22)
    cos = np.clip(S12 / norm, -1.0, 1.0)
    t = np.arccos(cos)
    return norm * (np.sin(t) + (np.pi - t) * cos) / (2 * np.pi), (np.pi - t) / (2 * np.pi)


def arcsine_kernels(S11, S22, S12):
    """E[erf(z) erf(z')] and E[erf'(z) erf'(z')] for centred Gaussians with covariance S."""
    q = (1 + 2 * S11) * (1 + 2 * S22)
    return (2 / np.pi) * np.arcsin(2 * S12 / np.sqrt(q)), (4 / np.pi) / np.sqrt(q - 4 * S12 ** 2)


def analytic_ntk(X1, X2, activation, bias, tau, c2, standard_a=False, gaussian_b=True):
    """Infinite-width kernel E_w[grad phi(w, x) . grad phi(w, x')], entry by entry.

    a ~ N(0, tau^2 I / d) (``standard_a``: N(0, tau^2 I)), b ~ N(0, tau^2) (or 0),
    E c^2 = c2: ``c2 E[s'(z) s'(z')] (x . x' + 1_bias) + E[s(z) s(z')]``.
    """
    d = X1.shape[1]
    scale = 1.0 if standard_a else 1.0 / d
    beta = 1.0 if (bias and gaussian_b) else 0.0
    kernels = {"relu": arccos_kernels, "erf": arcsine_kernels}[activation]
    K = np.empty((len(X1), len(X2)))
    for j, x in enumerate(X1):
        for k, xp in enumerate(X2):
            S = tau ** 2 * np.array([x @ x * scale + beta, xp @ xp * scale + beta,
                                     x @ xp * scale + beta])
            ss, dd = kernels(*S)
            K[j, k] = c2 * dd * (x @ xp + (1.0 if bias else 0.0)) + ss
    return K


def h_inf(X, bias, layers):
    """Du et al.'s H-inf for relu, w ~ N(0, I): x.x' (pi - t)/(2 pi) [+ E relu relu]."""
    Xt = np.hstack([X, np.ones((len(X), 1))]) if bias else X
    G = Xt @ Xt.T
    sq = np.diag(G)
    ss, dd = arccos_kernels(sq[:, None], sq[None, :], G)
    return {"first": G * dd, "second": ss, "both": G * dd + ss}[layers]


def w2_1d(x, y):
    """W2 between uniform measures on the line, by replicating both samples to lcm(n, m)."""
    n, m = len(x), len(y)
    N = np.lcm(n, m)
    xs = np.sort(np.repeat(x, N // n))
    ys = np.sort(np.repeat(y, N // m))
    return np.sqrt(np.mean((xs - ys) ** 2))


def sliced_w2(P, Q, directions):
    """Sliced W2: root mean over the (normalised) directions of the squared 1-D W2."""
    u = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    return np.sqrt(np.mean([w2_1d(P @ t, Q @ t) ** 2 for t in u]))


# --------------------------------------------------------------------------------------
# The published parameterisation (Chizat, Oyallon & Bach's scripts): no 1/m
# --------------------------------------------------------------------------------------

def _published_output(W, X, scaling):
    H = np.maximum(X @ W[:, :-1].T, 0.0)               # (n, m) relu(a_i . x_j)
    return H, scaling * H @ W[:, -1]


def published_loss(W, X, y, scaling):
    """(1/2) mean_j (f(x_j) - y_j)^2 with f(x) = scaling * sum_i c_i relu(a_i . x)."""
    _, f = _published_output(W, X, scaling)
    return 0.5 * np.mean((f - y) ** 2)


def published_gd(W, X, y, scaling, step, steps):
    """``steps`` updates of the authors' ``GDfor2NN`` (``lazy.ipynb``), rows W_i = (a_i, c_i).

    Their ``grad`` is the gradient of ``published_loss`` without the output's factor
    ``scaling`` (``grad_w2 = temp * gradR``), and the update is
    ``W <- W - (step / scaling) grad``: a step of ``step`` on L / scaling^2.
    """
    W = np.array(W, dtype=np.float64)
    n = len(y)
    for _ in range(steps):
        H, f = _published_output(W, X, scaling)
        r = (f - y) / n                                   # gradR
        grad_c = H.T @ r                                  # grad_w2 = temp * gradR
        grad_a = (((H > 0.0) * r[:, None]) * W[:, -1][None, :]).T @ X   # grad_w1
        W = W - (step / scaling) * np.hstack([grad_a, grad_c[:, None]])
    return W


# --------------------------------------------------------------------------------------
# Gram-Gauss-Newton (Cai et al. 2019)
# --------------------------------------------------------------------------------------

def ggn_jacobian(P, X, activation, alpha, bias):
    """Jacobian ``J[j, i D + k] = d f(x_j) / d P[i, k]`` (shape (n, m D)) of :func:`forward`.

    ``df/dc_i = (alpha/m) s(z_ij)``, ``df/da_i = (alpha/m) c_i s'(z_ij) x_j`` and
    ``df/db_i = (alpha/m) c_i s'(z_ij)``.
    """
    s, ds = ACTIVATIONS[activation]
    X = np.asarray(X, dtype=np.float64)
    Z, _, _, c = _preactivations(P, X, bias)          # (m, n)
    m, n = Z.shape
    blocks = [(c[:, None] * ds(Z))[:, :, None] * X[None, :, :]]     # (m, n, d)
    if bias:
        blocks.append((c[:, None] * ds(Z))[:, :, None])
    blocks.append(s(Z)[:, :, None])
    J = (alpha / m) * np.concatenate(blocks, axis=2)                # (m, n, D)
    return J.transpose(1, 0, 2).reshape(n, -1)


def ggn(P, X, y, activation, alpha, bias, lr, damping, batches):
    """GGN steps ``P <- P - lr J^T (J J^T + damping I)^{-1} (f(P) - y)``, one per batch.

    ``batches`` is a sequence of index arrays into the rows of ``X`` (``range(n)`` for
    a full-batch step).  Returns the particles after the last step (a new array).
    """
    P = np.array(P, dtype=np.float64)
    for idx in batches:
        Xb, yb = np.asarray(X)[idx], np.asarray(y)[idx]
        J = ggn_jacobian(P, Xb, activation, alpha, bias)
        r = forward(P, Xb, activation, alpha, bias) - yb
        u = np.linalg.solve(J @ J.T + damping * np.eye(len(idx)), r)
        P = P - lr * (J.T @ u).reshape(P.shape)
    return P
