"""Sweep plans: points, their seeds, the manifest of a sweep folder."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..config import Config
from ..config.tomlio import apply_overrides
from ..errors import InputError
from ..storage.atomic import write_text

MANIFEST = "manifest.json"
RUNS = "runs"
FAILED = "failed"
FORMAT = "meanfield-sweep"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Point:
    """One point of a sweep.

    Attributes
    ----------
    index : int
        Position in the manifest (the Slurm array task id that runs it,
        plus the offset of its array job when the plan is split).
    overrides : dict
        ``{"section.key": value}`` applied to the base config.
    replicate : int
        The replicate label it was planned with (from ``[seeds]``).
    seed : int
        Its ``run.seed``, derived by :func:`point_seed`.
    output : str
        Its run file, relative to the sweep folder (``runs/00012.h5``).
    """

    index: int
    overrides: dict
    replicate: int
    seed: int
    output: str

    def to_dict(self) -> dict:
        return {"index": self.index, "overrides": dict(self.overrides),
                "replicate": self.replicate, "seed": self.seed, "output": self.output}


def point_seed(overrides: dict, replicate: int, base_seed: int = 0) -> int:
    r"""The ``run.seed`` of a sweep point, a pure function of the point.

    .. math:: \mathrm{seed} = \left\lfloor \mathrm{SHA256}_{0:8}
              (\mathrm{json}(s_0, \mathrm{overrides}, r)) / 2 \right\rfloor < 2^{63}

    (the first 8 bytes of the digest, big-endian, shifted right by one bit),
    with canonical JSON (sorted keys, numbers as written by the config: 1 and
    1.0 differ only if the key is an integer one), so it is the same on every
    machine and Python version, whatever the order points are planned or run.

    Parameters
    ----------
    overrides : dict
        ``{"section.key": value}`` of the point (``{}`` for shared seeds).
    replicate : int
        The replicate label (0, 1, ... for ``seeds.count``).
    base_seed : int
        The base config's ``run.seed``: a different master seed gives a
        different, independent family of seeds.

    Examples
    --------
    >>> point_seed({"model.m": 16}, 0) == point_seed({"model.m": 16}, 0)
    True
    >>> point_seed({"model.m": 16}, 0) != point_seed({"model.m": 32}, 0)
    True
    >>> 0 <= point_seed({}, 5, base_seed=7) < 2**63
    True
    """
    blob = json.dumps({"base_seed": int(base_seed), "overrides": overrides,
                       "replicate": int(replicate)}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    digest = hashlib.sha256(blob.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def point_config(base_tables: dict, overrides: dict, seed: int) -> Config:
    """The config of a point: the base tables, its overrides, and ``run.seed = seed``."""
    return Config.from_dict(apply_overrides(base_tables, {**overrides, "run.seed": seed}))


def _check_output(folder: Path, output, index) -> str:
    """``output`` if it is a relative path that stays inside ``folder``, else InputError."""
    where = f"{folder / MANIFEST}: point {index}"
    if not isinstance(output, str) or not output:
        raise InputError(f"{where}: output must be a file name, got {output!r}")
    pure = PurePosixPath(output)
    if (pure.is_absolute() or Path(output).is_absolute() or ".." in pure.parts
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in output)):
        raise InputError(f"{where}: output {output!r} is outside the sweep folder; "
                         "refusing to write there")
    return output


class Plan:
    """A planned sweep: the folder, its base config and its points (from ``manifest.json``).

    Use :func:`plan` to create one and :func:`load_plan` to read it back.
    Every point's output must lie inside the folder: a manifest naming an
    absolute path, a ``..`` or a link out of the folder is refused.

    Attributes
    ----------
    folder : Path
    base : Config
        The base config (``run.seed`` is the sweep's master seed).
    grid : dict
        ``{"section.key": [values]}`` in the order the product runs over.
    points : list of Point
    """

    def __init__(self, folder, manifest: dict):
        self.folder = Path(folder)
        self.manifest = manifest
        self.base = Config.from_toml_text(manifest["base"], source=f"{self.manifest_path}: base")
        self._base_tables = self.base.to_dict()
        self.grid = manifest["grid"]
        self.points = [Point(p["index"], p["overrides"], p["replicate"], p["seed"],
                             _check_output(self.folder, p["output"], i))
                       for i, p in enumerate(manifest["points"])]
        if [p.index for p in self.points] != list(range(len(self.points))):
            raise InputError(f"{self.manifest_path}: point indices are not 0, 1, 2, ...")

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def __len__(self) -> int:
        return len(self.points)

    def __repr__(self):
        return f"<Plan {self.folder}: {len(self)} points, grid {list(self.grid)}>"

    def point(self, index: int) -> Point:
        """The point ``index``; :class:`InputError` if there is none."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self):
            raise InputError(f"point index {index!r} out of range: the sweep in {self.folder} "
                             f"has {len(self)} points (0..{len(self) - 1})")
        return self.points[index]

    def config(self, index: int) -> Config:
        """The full config of point ``index`` (base + overrides + its seed)."""
        p = self.point(index)
        return point_config(self._base_tables, p.overrides, p.seed)

    def path(self, index: int) -> Path:
        """The run file of point ``index`` (InputError if a link leads it out of the folder)."""
        p = self.point(index)
        path = self.folder / p.output
        root = self.folder.resolve()
        if root not in path.resolve().parents:
            raise InputError(f"{self.manifest_path}: point {index}: output {p.output!r} "
                             f"resolves to {path.resolve()}, outside the sweep folder")
        return path

    def _failure_path(self, index: int) -> Path:
        return self.folder / FAILED / f"{self.point(index).index}.txt"

    def mark_failed(self, index: int, reason: str):
        """Record that point ``index`` failed for ``reason`` (a line of text); its file
        keeps its checkpoint, and :func:`status` reports the point ``failed``."""
        folder = self.folder / FAILED
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create {folder}: {exc.strerror or exc}") from None
        write_text(self._failure_path(index), reason.strip() + "\n")

    def failure(self, index: int):
        """The reason recorded by :meth:`mark_failed` for point ``index``, or None."""
        try:
            return self._failure_path(index).read_text().strip()
        except (OSError, UnicodeDecodeError):
            return None

    def clear_failure(self, index: int):
        """Forget a failure recorded for point ``index`` (it is about to run again)."""
        try:
            self._failure_path(index).unlink(missing_ok=True)
        except OSError as exc:
            raise InputError(f"cannot remove {self._failure_path(index)}: "
                             f"{exc.strerror or exc}") from None


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: not a sweep folder (no {MANIFEST}; "
                         "create one with `meanfield sweep plan SWEEP.toml -o DIR`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable sweep manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a meanfield sweep manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise InputError(f"{path}: sweep manifest version {manifest.get('version')!r} "
                         f"is not supported (this meanfield reads {FORMAT_VERSION})")
    return manifest


def load_plan(folder) -> Plan:
    """Read the plan of the sweep folder ``folder`` (its ``manifest.json``).

    Raises
    ------
    InputError
        if ``folder`` has no readable manifest, or a point's output lies
        outside the folder.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        return Plan(folder, manifest)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{folder / MANIFEST}: damaged sweep manifest ({exc!r})") from None


def as_plan(folder) -> Plan:
    """``folder`` itself if it is a :class:`Plan`, else :func:`load_plan` of it."""
    return folder if isinstance(folder, Plan) else load_plan(folder)
