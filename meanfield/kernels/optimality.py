"""Compiled inner loop of the polar (:mod:`meanfield.optimality`).

Small products (a few hundred directions against a few hundred inputs) run
as plain loops on one thread: through BLAS they cost more in thread
hand-overs than in arithmetic, badly so on a loaded machine.
"""

from .jit import jit


@jit
def correlate(U, X, z, g, G):
    r"""g(u) and its gradient for every row u of ``U``.

    .. math:: g(u) = \frac1n \sum_j z_j\, \mathrm{relu}(u \cdot x_j), \qquad
              \nabla g(u) = \frac1n \sum_{j:\, u \cdot x_j > 0} z_j x_j .

    Parameters
    ----------
    U : (K, k) directions; X : (n, k) inputs; z : (n,) residuals;
    g : (K,) output; G : (K, k) output.
    """
    K, k = U.shape
    n = X.shape[0]
    for r in range(K):
        total = 0.0
        for q in range(k):
            G[r, q] = 0.0
        for j in range(n):
            s = 0.0
            for q in range(k):
                s += U[r, q] * X[j, q]
            if s > 0.0:
                total += z[j] * s
                for q in range(k):
                    G[r, q] += z[j] * X[j, q]
        g[r] = total / n
        for q in range(k):
            G[r, q] /= n
