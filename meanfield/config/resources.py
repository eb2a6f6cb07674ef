"""Refuse runs that cannot fit in memory, before anything is allocated or written.

:func:`estimate_memory` adds up the arrays a run holds at once (8-byte
floats): the particles and the copies the algorithms keep (initial particles,
velocity, checkpoint buffer, workspace rows), the training and test data,
the teacher, the Monte-Carlo population sample, the fresh SGD batch, and the
Jacobian and Gram matrix of a Gram-Gauss-Newton batch.  Kernels work in
fixed-size tiles, so no term grows like m * n.  :func:`check_memory`
compares the total with the memory the machine has available now
(``MemAvailable`` of /proc/meminfo, else ``os.sysconf``) and raises
:class:`~meanfield.errors.InputError` with the estimate and its largest term.
"""

from __future__ import annotations

import os

from ..errors import InputError

PARTICLE_COPIES = 6
"""Arrays of the particles' shape a run holds: P, P0, velocity, checkpoint, two work rows."""

SAMPLE_COPIES = 3
"""Arrays of a data sample's shape: inputs, labels and their outputs/residuals."""


def estimate_memory(config) -> dict:
    """Bytes a run of ``config`` holds at once, by what holds them.

    Returns
    -------
    dict
        ``{"description naming the keys": bytes}``; the sum is the estimate.
    """
    dc, tr = config.data, config.train
    m, d, D = config.model.m, dc.d, config.dim
    row, dims = 8 * (d + 1), f"in data.d = {d} dimensions"
    parts = {f"model.m = {m} particles of {D} numbers": PARTICLE_COPIES * 8 * m * D}
    mc = config.model
    if mc.kind == "deep_linear":
        side = max(mc.width, d, mc.outputs)
        parts = {f"model.depth = {mc.depth} layers of up to {side} x {side} numbers "
                 f"(model.width = {mc.width}, data.d = {d}, model.outputs = {mc.outputs})":
                 PARTICLE_COPIES * 8 * mc.depth * side * side}
        row = 8 * (d + mc.outputs)
    if dc.kind != "file":
        parts[f"data.n_train = {dc.n_train} training points {dims}"] = (
            SAMPLE_COPIES * row * dc.n_train)
        parts[f"data.n_test = {dc.n_test} test points {dims}"] = SAMPLE_COPIES * row * dc.n_test
    if dc.kind == "teacher":
        parts[f"data.teacher_m = {dc.teacher_m} teacher neurons {dims}"] = 2 * row * dc.teacher_m
        if not _exact(config):
            parts[f"data.population_samples = {dc.population_samples} points {dims}"] = (
                SAMPLE_COPIES * row * dc.population_samples)
    if tr.algorithm in ("sgd", "ggn"):
        b = tr.batch_size if tr.algorithm == "sgd" else min(tr.batch_size, dc.n_train)
        parts[f"train.batch_size = {tr.batch_size} batch points {dims}"] = SAMPLE_COPIES * row * b
        if tr.algorithm == "ggn":
            parts[f"train.batch_size = {tr.batch_size}: Jacobian and Gram matrix"] = (
                8 * b * (m * D + 2 * b))
    return parts


def _exact(config) -> bool:
    from ..data import exact_population
    return exact_population(config) and config.train.model == "network"


def available_memory():
    """Bytes of memory available to a new allocation now, or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps the number >= 1 (MiB to EiB)."""
    for unit in ("MiB", "GiB", "TiB", "PiB"):
        scale = 2 ** (10 * ("MGTP".index(unit[0]) + 2))
        if n < 1024 * scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n / 2**60:.3g} EiB"


def check_memory(config, available=None):
    """Raise InputError when a run of ``config`` needs more memory than is available.

    Parameters
    ----------
    config : Config
    available : int, optional
        Bytes available (default: :func:`available_memory`; unknown means no check).
    """
    available = available_memory() if available is None else available
    parts = estimate_memory(config)
    need = sum(parts.values())
    if available is None or need <= available:
        return
    largest = max(parts, key=parts.get)
    raise InputError(f"the run needs about {_size(need)} of memory, {_size(parts[largest])} "
                     f"of it for {largest}, but {_size(available)} is available")
