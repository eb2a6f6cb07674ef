"""Compiled loops for deep linear networks: one call runs a whole chunk of steps.

A depth-N network x -> W_N ... W_1 x is stored as one flat C-contiguous
float64 vector ``theta`` holding W_1, ..., W_N one after another (each
row-major), with the widths ``dims = (n_0 = d, n_1, ..., n_N = k)`` as an
int64 array: layer j (0-based) is W_{j+1}, of shape (dims[j+1], dims[j]).
Data are X (n, d) and Y (n, k); the end-to-end matrix W_e = W_N ... W_1 is (k, d).

The loss of power p >= 2 (p = 2 is the squared loss) is

.. math::

    L(W_e) = \\frac{1}{n p} \\sum_{i, c} |(W_e x_i - y_i)_c|^p, \\qquad
    \\nabla L(W_e) = \\frac{1}{n} \\sum_i \\big(|r_i|^{p-2} r_i\\big) x_i^T,
    \\quad r_i = W_e x_i - y_i,

and the gradient of the same loss with respect to layer j is

.. math::

    \\nabla_{W_j} L = (W_N \\cdots W_{j+1})^T \\, \\nabla L(W_e) \\,
                     (W_{j-1} \\cdots W_1)^T.

The end-to-end update applies the preconditioner of Arora, Cohen & Hazan (2018),

.. math::

    \\dot W_e = -\\sum_{j=1}^{N} (W_e W_e^T)^{\\frac{j-1}{N}} \\, \\nabla L(W_e) \\,
                (W_e^T W_e)^{\\frac{N-j}{N}},

with fractional powers of the PSD matrices from their eigendecompositions
(eigenvalues below the round-off level n eps lambda_max set to zero, since
a power a < 1 would magnify them; the power 0 is the identity).

Every ``*_chunk`` loop writes the loss *before* each of its steps into
``losses`` (one entry per step) and returns the number of steps taken: fewer
than ``len(losses)`` when the loss stopped being finite (divergence), the
parameters being left as they were after the last finite step.
"""

import numpy as np

from .jit import jit


@jit
def layer(theta, dims, j):
    """View of W_{j+1} (0-based layer ``j``) inside ``theta``, shape (dims[j+1], dims[j])."""
    off = 0
    for i in range(j):
        off += dims[i + 1] * dims[i]
    return theta[off:off + dims[j + 1] * dims[j]].reshape((dims[j + 1], dims[j]))


@jit
def end_to_end(theta, dims):
    """W_e = W_N ... W_1, a new (k, d) array."""
    w = layer(theta, dims, 0).copy()
    for j in range(1, dims.shape[0] - 1):
        w = np.dot(layer(theta, dims, j), w)
    return w


@jit
def loss_and_gradient(w, X, Y, p, G):
    """Loss L(W_e) of power ``p`` (module docstring); writes its gradient into G (k, d)."""
    n = X.shape[0]
    r = np.dot(X, w.T) - Y
    if p == 2.0:
        loss = 0.5 * np.sum(r * r) / n
        s = r
    else:
        a = np.abs(r)
        loss = np.sum(a ** p) / (p * n)
        s = a ** (p - 2.0) * r
    G[:, :] = np.dot(s.T, X) / n
    return loss


@jit
def layer_gradients(theta, dims, G, grad):
    """Write every layer's gradient (W_N..W_{j+1})^T G (W_{j-1}..W_1)^T into ``grad`` (like theta).

    Prefix products W_{j-1}...W_1 are formed once; the factor on the left is
    carried down from t = G by t <- W_j^T t.
    """
    depth = dims.shape[0] - 1
    prefix = [layer(theta, dims, 0).copy()]          # prefix[i] = W_{i+1} ... W_1
    for j in range(1, depth - 1):
        prefix.append(np.dot(layer(theta, dims, j), prefix[j - 1]))
    t = G.copy()
    for j in range(depth - 1, -1, -1):
        out = layer(grad, dims, j)
        if j == 0:
            out[:, :] = t
        else:
            out[:, :] = np.dot(t, prefix[j - 1].T)
            t = np.dot(layer(theta, dims, j).T, t)


@jit
def gd_chunk(theta, dims, X, Y, p, lr, losses):
    """``len(losses)`` GD steps W_j <- W_j - lr grad_{W_j} L on every layer at once, in place."""
    G = np.empty((dims[dims.shape[0] - 1], dims[0]))
    grad = np.empty_like(theta)
    for s in range(losses.shape[0]):
        losses[s] = loss_and_gradient(end_to_end(theta, dims), X, Y, p, G)
        if not np.isfinite(losses[s]):
            return s
        layer_gradients(theta, dims, G, grad)
        theta -= lr * grad
    return losses.shape[0]


@jit
def _psd_power(lam, V, a):
    """(V diag(lam) V^T)^a for eigenpairs of a PSD matrix; a = 0 gives the identity."""
    if a == 0.0:
        return np.eye(V.shape[0])
    floor = lam.shape[0] * 2.2e-16 * np.max(np.abs(lam))
    return np.dot(V * np.where(lam > floor, lam, 0.0) ** a, V.T)


@jit
def preconditioned(w, G, depth):
    """sum_j (W W^T)^((j-1)/N) G (W^T W)^((N-j)/N) for W = ``w``, N = ``depth``."""
    lam_l, u = np.linalg.eigh(np.dot(w, w.T))
    lam_r, v = np.linalg.eigh(np.dot(w.T, w))
    out = np.zeros_like(G)
    for j in range(1, depth + 1):
        left = _psd_power(lam_l, u, (j - 1) / depth)
        right = _psd_power(lam_r, v, (depth - j) / depth)
        out += np.dot(np.dot(left, G), right)
    return out


@jit
def end_to_end_chunk(w, depth, X, Y, p, lr, losses):
    """``len(losses)`` Euler steps W_e <- W_e - lr P(W_e) grad L(W_e) of the depth-N dynamics."""
    G = np.empty_like(w)
    for s in range(losses.shape[0]):
        losses[s] = loss_and_gradient(w, X, Y, p, G)
        if not np.isfinite(losses[s]):
            return s
        w -= lr * preconditioned(w, G, depth)
    return losses.shape[0]


@jit
def adagrad_chunk(w, acc, X, Y, p, lr, eps, losses):
    """AdaGrad on W (depth 1): acc += G^2; W <- W - lr G / (sqrt(acc) + eps), in place."""
    G = np.empty_like(w)
    for s in range(losses.shape[0]):
        losses[s] = loss_and_gradient(w, X, Y, p, G)
        if not np.isfinite(losses[s]):
            return s
        acc += G * G
        w -= lr * G / (np.sqrt(acc) + eps)
    return losses.shape[0]


@jit
def adam_chunk(w, moments, X, Y, p, hyper, losses):
    """Adam on W (depth 1), in place; ``hyper`` = (lr, beta1, beta2, eps, steps done so far).

    m <- b1 m + (1 - b1) G, v <- b2 v + (1 - b2) G^2,
    W <- W - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), t = 1, 2, ...
    ``moments`` is (2, k, d): m then v.
    """
    lr, b1, b2, eps, done = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    G = np.empty_like(w)
    m = moments[0]
    v = moments[1]
    for s in range(losses.shape[0]):
        losses[s] = loss_and_gradient(w, X, Y, p, G)
        if not np.isfinite(losses[s]):
            return s
        t = done + s + 1.0
        m[:, :] = b1 * m + (1.0 - b1) * G
        v[:, :] = b2 * v + (1.0 - b2) * G * G
        w -= lr * (m / (1.0 - b1 ** t)) / (np.sqrt(v / (1.0 - b2 ** t)) + eps)
    return losses.shape[0]
