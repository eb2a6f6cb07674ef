"""The performance suite of meanfield (DESIGN.md section 5); not part of the test run.

::

    python benchmarks/run.py [--quick] [-o data/benchmarks.csv]

For every case, in one process and one run: seconds per step of meanfield's
engine (``meanfield.algorithms.<name>.advance``: compiled chunk loops), the ratio of
that to one NumPy GEMM of the case's (n, m, d) shape, to the plain NumPy step
of ``tests/reference.py`` (the implementation the kernels are tested against)
and, when ``torch`` is installed (``pip install '.[bench]'``), to a PyTorch
CPU autograd step; and meanfield's peak memory beyond its inputs.  Then one
row per activation (relu, tanh, sigmoid, erf, softplus) at (1000, 512, 100)
and at the tiny 2-D case, as ratios to the relu row of the same size; rows of
growing m (4096, 16384, 65536) at n = 4096, d = 100 against one GEMM of their
shape, with peak memory; then the cold start of ``meanfield run`` as whole processes (empty Numba cache, then
warm) and the recording overhead at the default recording rate.

Each time is the best of several repeats, each repeat long enough (about
0.2 s) for the clock.  Ratios above 1 mean meanfield is slower than the
other side, below 1 faster.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meanfield import _threading

_threading.apply()  # before NumPy loads, as the `meanfield` command does

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import reference as ref  # noqa: E402  (the plain NumPy implementation of the equations)

from meanfield import Config, Dataset, algorithms, simulate  # noqa: E402
from meanfield.state import seed_streams  # noqa: E402

try:
    import torch
except ImportError:  # the optional `bench` extra
    torch = None

# (name, algorithm, n, m, d): n is the batch for SGD and the teacher size m0 for the population
CASES = [
    ("tiny 2-D", "gd", 15, 16, 2),
    ("small", "gd", 1000, 50, 100),
    ("medium", "gd", 1000, 512, 100),
    ("large", "gd", 4096, 4096, 100),
    ("population flow", "population", 10, 1000, 100),
    ("sgd batch 200", "sgd", 200, 512, 100),
]
ACTIVATION_CASES = [(f"{size} {act}", "gd", n, m, d, act)
                    for size, n, m, d in (("medium", 1000, 512, 100), ("tiny 2-D", 15, 16, 2))
                    for act in ("relu", "tanh", "sigmoid", "erf", "softplus")]
"""One row per activation at two sizes; each is compared with the relu row of its size."""
SCALE_CASES = [(f"n 4096, m {m}", "gd", 4096, m, 100) for m in (4096, 16384, 65536)]
"""Growing m at n = 4096, d = 100: time per step against one GEMM, and peak memory."""
GGN_CASE = ("ggn full batch 100", "ggn", 100, 512, 50)
"""Gram-Gauss-Newton on the whole training set: against GD at the same size and NumPy GGN."""
QUICK = {"large": ("large (quick: 2048)", "gd", 2048, 2048, 100)}
LR = 0.01


def best_time(fn, min_time=0.2, repeats=5):
    """Best over ``repeats`` of the mean time of ``fn()``, each repeat at least ``min_time`` s."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    k = max(1, int(min_time / once))
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        best = min(best, (time.perf_counter() - t0) / k)
    return best


def peak_memory_beyond(fn):
    """Peak resident memory (bytes) that ``fn()`` adds to the process (Linux; else nan)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
            fh.write("5")
        before = _status_kib("VmRSS")
        fn()
        return 1024 * (_status_kib("VmHWM") - before)
    except OSError:
        return float("nan")


def _status_kib(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(key)


def numpy_velocity(P, X, y):
    """v = -m grad J for relu, no bias, squared loss, alpha = 1: the textbook NumPy step.

    With Z = X A^T, f = relu(Z) c / m and g = (f - y) / n:
    v_a = -c * (1{Z > 0} * g)^T X and v_c = -relu(Z)^T g.
    """
    d = X.shape[1]
    A, c = P[:, :d], P[:, d]
    Z = X @ A.T
    S = np.maximum(Z, 0.0)
    g = (S @ c / P.shape[0] - y) / X.shape[0]
    V = np.empty_like(P)
    V[:, :d] = -c[:, None] * (((Z > 0) * g[:, None]).T @ X)
    V[:, d] = -(S.T @ g)
    return V


class Case:
    """One benchmark problem: a network without bias, squared loss, alpha = 1.

    ``exact``: whether the teacher is handed to the engine, which then records the exact
    population risk at step 0 (O(m^2) work: the growing-m rows leave it out).
    """

    def __init__(self, name, algorithm, n, m, d, activation="relu", exact=True, seed=0):
        rng = np.random.default_rng(seed)
        self.name, self.algorithm, self.n, self.m, self.d = name, algorithm, n, m, d
        self.activation, self.exact = activation, exact
        self.P = np.hstack([rng.standard_normal((m, d)) / np.sqrt(d), rng.standard_normal((m, 1))])
        m0 = n if algorithm == "population" else 10
        self.T = np.hstack([rng.standard_normal((m0, d)), np.where(np.arange(m0) % 2, -1.0, 1.0)[:, None]])
        self.T[:, :d] /= np.linalg.norm(self.T[:, :d], axis=1, keepdims=True)
        rows = n if algorithm in ("gd", "ggn") else 16  # SGD: fresh samples; population: none
        self.X = rng.standard_normal((rows, d))
        self.y = ref.teacher_forward(self.T, self.X, activation)
        self.rng = rng

    # ------------------------------------------------------------------ meanfield
    def meanfield(self, steps):
        """``steps`` steps of meanfield's engine, without recording.

        ``algorithm.advance``: the compiled chunk loop and, for SGD, the fresh
        batches drawn in bulk.  (Records every 10^15 steps: only step 0 records,
        in the warm-up call.)
        """
        algorithm = algorithms.get(self.algorithm)
        rows = len(self.y)
        cfg = Config.from_dict({
            "model": {"m": self.m, "activation": self.activation},
            "data": {"d": self.d, "n_train": rows, "n_test": rows,
                     "teacher_m": self.T.shape[0], "teacher_activation": self.activation},
            "train": {"algorithm": self.algorithm, "batch_size": self.n, "lr": LR,
                      "steps": 10 ** 15}, "record": {"every": 10 ** 15}})
        state = algorithm.init(cfg, Dataset(self.X, self.y, self.X, self.y,
                                            self.T if self.exact else None), seed_streams(1))
        state.particles[:] = self.P
        return lambda: algorithm.advance(state, steps)

    # ---------------------------------------------------------------------- numpy
    def numpy_step(self):
        """One step of a plain vectorised NumPy implementation (fresh samples for SGD)."""
        P = self.P.copy()
        if self.algorithm == "population":
            return lambda: ref.relu_population_velocity(P, self.T, 1.0, 0.0)

        def step():
            if self.algorithm == "sgd":
                X = self.rng.standard_normal((self.n, self.d))
                y = ref.teacher_forward(self.T, X, "relu")
            else:
                X, y = self.X, self.y
            P[:] += LR * numpy_velocity(P, X, y)
        return step

    # ---------------------------------------------------------------------- torch
    def torch_step(self):
        """One step of a PyTorch CPU autograd loop (float64), or None."""
        if torch is None or self.algorithm == "population":
            return None
        d, m = self.d, self.m
        A = torch.tensor(self.P[:, :d], requires_grad=True)
        c = torch.tensor(self.P[:, d], requires_grad=True)
        Tt = torch.tensor(self.T)
        X0, y0 = torch.tensor(self.X), torch.tensor(self.y)

        def step():
            if self.algorithm == "sgd":
                X = torch.randn(self.n, d, dtype=torch.float64)
                y = torch.relu(X @ Tt[:, :d].T) @ Tt[:, d] / Tt.shape[0]
            else:
                X, y = X0, y0
            f = torch.relu(X @ A.T) @ c / m
            J = 0.5 * torch.mean((f - y) ** 2)
            gA, gc = torch.autograd.grad(J, (A, c))
            with torch.no_grad():
                A.sub_(LR * m * gA)
                c.sub_(LR * m * gc)
        return step

    def gemm(self):
        """One BLAS GEMM of the case's shape: (n, d) x (d, m)."""
        n = self.n if self.algorithm != "population" else self.m
        X = np.ascontiguousarray(self.rng.standard_normal((n, self.d)))
        A = np.ascontiguousarray(self.P[:, :self.d])
        out = np.empty((n, self.m))
        return lambda: np.dot(X, A.T, out=out)


def bench_case(case):
    steps = max(1, int(0.2 / max(best_time(case.meanfield(1), min_time=0.05, repeats=2), 1e-7)))
    mf = best_time(case.meanfield(steps), repeats=5) / steps
    gemm = best_time(case.gemm())
    numpy = best_time(case.numpy_step(), repeats=3)
    tstep = case.torch_step()
    torch_s = best_time(tstep, repeats=3) if tstep else float("nan")
    mem = peak_memory_beyond(case.meanfield(1))
    return {"case": case.name, "algorithm": case.algorithm, "n": case.n, "m": case.m,
            "d": case.d, "meanfield_s_per_step": mf, "gemm_s": gemm,
            "ratio_to_gemm": mf / gemm, "numpy_s_per_step": numpy, "ratio_to_numpy": mf / numpy,
            "torch_s_per_step": torch_s, "ratio_to_torch": mf / torch_s,
            "peak_extra_MiB": mem / 2 ** 20}


def bench_ggn(spec):
    """Seconds per GGN step against one GD step of the same (n, m, d) and one NumPy GGN
    step (``reference.ggn``: explicit Jacobian, ``np.linalg.solve``)."""
    case = Case(*spec)
    ggn = best_time(case.meanfield(1), repeats=3)
    gd = best_time(Case(spec[0], "gd", *spec[2:]).meanfield(1), repeats=3)
    rows = [np.arange(case.n)]
    numpy = best_time(lambda: ref.ggn(case.P, case.X, case.y, "relu", 1.0, False, LR, 0.0,
                                      rows), repeats=3)
    return {"case": case.name, "algorithm": "ggn", "n": case.n, "m": case.m, "d": case.d,
            "meanfield_s_per_step": ggn, "ratio_to_gd": ggn / gd, "numpy_s_per_step": numpy,
            "ratio_to_numpy": ggn / numpy}


def bench_activation(case, relu_row):
    """Seconds per step of an activation case, and its ratio to the relu row of its size."""
    steps = max(1, int(0.2 / max(best_time(case.meanfield(1), min_time=0.05, repeats=2), 1e-7)))
    mf = best_time(case.meanfield(steps), repeats=5) / steps
    relu = relu_row["meanfield_s_per_step"] if relu_row else mf
    return {"case": case.name, "algorithm": case.algorithm, "n": case.n, "m": case.m,
            "d": case.d, "meanfield_s_per_step": mf, "ratio_to_relu": mf / relu}


SCALE_STEPS = 3
"""Steps per timed chunk of the growing-m rows (a run's chunks span many steps: the
workspace a chunk allocates is shared by its steps)."""


def bench_scale(case):
    """Seconds per step at growing m (chunks of ``SCALE_STEPS`` steps) against one GEMM,
    timed alternately (best of three each, so that a slower spell of the machine affects
    both), and the peak extra memory of a one-step chunk."""
    step = case.meanfield(SCALE_STEPS)
    gemm = case.gemm()
    step()
    gemm()
    mf = g = np.inf
    for _ in range(3):
        mf = min(mf, _timed(step) / SCALE_STEPS)
        g = min(g, _timed(gemm))
    mem = peak_memory_beyond(case.meanfield(1))
    return {"case": case.name, "algorithm": case.algorithm, "n": case.n, "m": case.m,
            "d": case.d, "meanfield_s_per_step": mf, "gemm_s": g, "ratio_to_gemm": mf / g,
            "peak_extra_MiB": mem / 2 ** 20}


SMALL_RUN = """\
[model]
m = 16
[data]
d = 2
n_train = 15
n_test = 15
[train]
steps = 2000
lr = 0.05
"""


def cold_start(folder):
    """Wall time of two ``meanfield run`` processes sharing an initially empty Numba cache."""
    cfg = Path(folder) / "small.toml"
    cfg.write_text(SMALL_RUN)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(folder) / "numba-cache"))
    times = []
    for k in range(2):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "meanfield.cli", "run", str(cfg), "-o",
                        str(Path(folder) / f"run{k}.h5"), "--quiet"], check=True, env=env)
        times.append(time.perf_counter() - t0)
    return times


def recording_overhead():
    """Relative cost of the default recording (every 100 steps) over recording only at the ends.

    A medium run (n = 1000, m = 512, d = 100) of 2000 steps, in memory.
    """
    base = {"model": {"m": 512}, "data": {"d": 100, "n_train": 1000, "n_test": 1000},
            "train": {"steps": 2000, "lr": 0.01}, "record": {"snapshot_every": 2000,
                                                            "checkpoint_every": 2000}}
    quiet = Config.from_dict({**base, "record": {**base["record"], "every": 2000}})
    default = Config.from_dict(base)
    simulate(quiet.with_overrides(["train.steps=10"]))
    t_quiet = min(_timed(simulate, quiet) for _ in range(2))
    t_default = min(_timed(simulate, default) for _ in range(2))
    return t_default / t_quiet - 1, t_quiet, t_default


def case_mib(spec):
    """Size of the particles of a case (m, d + 1), in MiB."""
    return round(spec[3] * (spec[4] + 1) * 8 / 2 ** 20)


def _timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="the large case at 2048, growing m only to 16384")
    parser.add_argument("-o", "--output", default=str(ROOT / "data" / "benchmarks.csv"))
    args = parser.parse_args(argv)
    import numba
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numba {numba.__version__} ({numba.get_num_threads()} threads), numpy "
          f"{np.__version__}, torch {torch.__version__ if torch else 'not installed'}")
    rows = []
    for spec in CASES:
        spec = QUICK.get(spec[0], spec) if args.quick else spec
        row = bench_case(Case(*spec))
        rows.append(row)
        print(f"{row['case']:>20}: {row['meanfield_s_per_step']:.3e} s/step  "
              f"x{row['ratio_to_gemm']:.2f} GEMM  x{row['ratio_to_numpy']:.3f} NumPy  "
              f"x{row['ratio_to_torch']:.3f} torch  peak +{row['peak_extra_MiB']:.1f} MiB",
              flush=True)
    row = bench_ggn(GGN_CASE)
    rows.append(row)
    print(f"{row['case']:>20}: {row['meanfield_s_per_step']:.3e} s/step  "
          f"x{row['ratio_to_gd']:.1f} GD step  x{row['ratio_to_numpy']:.3f} NumPy GGN step",
          flush=True)
    relu = None
    for spec in ACTIVATION_CASES:
        row = bench_activation(Case(*spec), None if spec[5] == "relu" else relu)
        relu = row if spec[5] == "relu" else relu
        rows.append(row)
        print(f"{row['case']:>20}: {row['meanfield_s_per_step']:.3e} s/step  "
              f"x{row['ratio_to_relu']:.2f} relu", flush=True)
    for spec in SCALE_CASES[:2] if args.quick else SCALE_CASES:
        row = bench_scale(Case(*spec, exact=False))
        rows.append(row)
        print(f"{row['case']:>20}: {row['meanfield_s_per_step']:.3e} s/step  "
              f"x{row['ratio_to_gemm']:.2f} GEMM  peak +{row['peak_extra_MiB']:.1f} MiB "
              f"(particles {case_mib(spec)} MiB)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        first, second = cold_start(tmp)
    print(f"cold start: first `meanfield run` {first:.2f} s, second {second:.2f} s")
    overhead, t_quiet, t_default = recording_overhead()
    print(f"recording overhead at the default rate: {100 * overhead:.1f}% "
          f"({t_default:.2f} s vs {t_quiet:.2f} s)")
    rows.append({"case": "cold start, first run", "meanfield_s_per_step": first})
    rows.append({"case": "cold start, second run", "meanfield_s_per_step": second})
    rows.append({"case": "recording overhead (fraction)", "meanfield_s_per_step": overhead})
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(args.output, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
