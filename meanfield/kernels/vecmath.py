r"""exp, log1p, tanh and erf written so that a loop calling them vectorises.

Numba calls the C library for ``math.exp`` and friends, one element at a time:
LLVM cannot vectorise a loop around such a call (Numba's vector route, Intel's
SVML, needs an llvmlite built with SVML support, which current llvmlite wheels are
not).  The functions here use only arithmetic, ``floor``, comparisons and
selects, so that the loops of :func:`meanfield.kernels.elementwise.act_rows`
become SIMD code.  Each is accurate to a few units in the last place:

* ``exp``: :math:`e^x = 2^k e^r`, :math:`k = \lfloor x \log_2 e \rceil`,
  :math:`r = x - k \ln 2` (ln 2 split in two parts), :math:`|r| \le \ln 2 / 2`,
  :math:`e^r` by its Taylor polynomial of degree 13 (remainder below
  :math:`3 \cdot 10^{-18}`); :math:`2^k` is applied as two factors
  :math:`2^{k_1} 2^{k - k_1}`, each built from its exponent bits, so that
  subnormal results, underflow to 0 and overflow to inf come out as from the C library.
* ``log1p`` on :math:`x \ge 0`: :math:`\log(1 + x) = 2\,\mathrm{atanh}\, s` with
  :math:`s = x / (2 + x)`, or :math:`\ln 2 + 2\,\mathrm{atanh}((x - 1) / (x + 3))`
  for :math:`x > \sqrt 2 - 1`, so that :math:`|s| \le 0.172`; atanh by its odd
  series to :math:`s^{23}`.
* ``tanh``: the Cephes rational approximation for :math:`|x| < 0.625`, else
  :math:`1 - 2 / (e^{2|x|} + 1)` with the sign of x.
* ``erf``: the Cephes rational approximations: :math:`x\, T(x^2) / U(x^2)` for
  :math:`|x| \le 1`, else :math:`1 - e^{-x^2} P(|x|) / Q(|x|)` (two ranges, split at 8).
"""

import math

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import jit_inline

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LN2 = math.log(2.0)
_SQRT2_M1 = math.sqrt(2.0) - 1.0

_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


@intrinsic
def _pow2(typingctx, k):
    """2.0 ** k for an integer -1022 <= k <= 1023, from the exponent bits (no libm call)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        biased = builder.add(args[0], ir.Constant(i64, 1023))
        bits = builder.shl(biased, ir.Constant(i64, 52))
        return builder.bitcast(bits, ir.DoubleType())
    return sig, codegen


@jit_inline
def exp(x):
    """e^x to about 1 ulp (0 below -745.2, inf above 709.8, like the C library)."""
    x = min(max(x, -746.0), 710.0)
    k = math.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = ((((((1.0 / 6227020800.0 * r + 1.0 / 479001600.0) * r + 1.0 / 39916800.0) * r
             + 1.0 / 3628800.0) * r + 1.0 / 362880.0) * r + 1.0 / 40320.0) * r + 1.0 / 5040.0)
    p = (((((p * r + 1.0 / 720.0) * r + 1.0 / 120.0) * r + 1.0 / 24.0) * r + 1.0 / 6.0) * r
         + 0.5) * r
    p = p * r + r + 1.0
    k1 = int(k) >> 1
    return p * _pow2(k1) * _pow2(int(k) - k1)


@jit_inline
def _atanh2(s):
    """2 atanh(s) for |s| <= 0.172 (odd series to s^23)."""
    z = s * s
    p = ((((2.0 / 23.0 * z + 2.0 / 21.0) * z + 2.0 / 19.0) * z + 2.0 / 17.0) * z
         + 2.0 / 15.0) * z + 2.0 / 13.0
    p = (((((p * z + 2.0 / 11.0) * z + 2.0 / 9.0) * z + 2.0 / 7.0) * z + 2.0 / 5.0) * z
         + 2.0 / 3.0) * z + 2.0
    return s * p


@jit_inline
def log1p(x):
    """log(1 + x) for x >= 0, to a few ulp (also for tiny x)."""
    big = x > _SQRT2_M1
    s = (x - 1.0) / (x + 3.0) if big else x / (2.0 + x)
    return _atanh2(s) + (_LN2 if big else 0.0)


@jit_inline
def tanh(x):
    """tanh x, to about 1 ulp."""
    a = abs(x)
    z = x * x
    p0, p1, p2 = _TANH_P
    q0, q1, q2 = _TANH_Q
    small = x + x * z * (((p0 * z + p1) * z + p2) / (((z + q0) * z + q1) * z + q2))
    large = 1.0 - 2.0 / (exp(2.0 * a) + 1.0)
    return small if a < 0.625 else (large if x >= 0.0 else -large)


@jit_inline
def erf(x):
    """erf x, to about 1 ulp."""
    a = abs(x)
    z = x * x
    t0, t1, t2, t3, t4 = _ERF_T
    u0, u1, u2, u3, u4 = _ERF_U
    inner = x * ((((t0 * z + t1) * z + t2) * z + t3) * z + t4) \
        / (((((z + u0) * z + u1) * z + u2) * z + u3) * z + u4)
    p0, p1, p2, p3, p4, p5, p6, p7, p8 = _ERFC_P
    q0, q1, q2, q3, q4, q5, q6, q7 = _ERFC_Q
    near = ((((((((p0 * a + p1) * a + p2) * a + p3) * a + p4) * a + p5) * a + p6) * a + p7)
            * a + p8) / (((((((((a + q0) * a + q1) * a + q2) * a + q3) * a + q4) * a + q5)
                           * a + q6) * a + q7))
    r0, r1, r2, r3, r4, r5 = _ERFC_R
    s0, s1, s2, s3, s4, s5 = _ERFC_S
    far = (((((r0 * a + r1) * a + r2) * a + r3) * a + r4) * a + r5) \
        / ((((((a + s0) * a + s1) * a + s2) * a + s3) * a + s4) * a + s5)
    tail = 1.0 - exp(-z) * (near if a < 8.0 else far)
    return inner if a <= 1.0 else (tail if x >= 0.0 else -tail)
