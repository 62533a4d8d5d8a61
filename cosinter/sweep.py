"""Parameter sweeps: one base case run over the points of a grid of case keys.

A sweep file (TOML) names a base case and axes over dotted case-key paths (the
paths of ``--set``)::

    base = "lee2024_ncm104.toml"          # relative to the sweep file
    combine = "product"                   # or "zip"
    [axes]
    "temperature.steps.0.to" = ["500 degC", "600 degC", "700 degC"]
    "layers.0.orientation" = { tilt = { linspace = ["0 deg", "90 deg", 7] } }
    [summary]
    at = ["450 degC", "700 degC"]         # optional: metrics at these temperatures too

:func:`load_sweep` expands the axes into points, each a list of ``KEY=VALUE``
overrides of the base case, and validates every point (case schema and
resolution) before anything runs. :func:`run_sweep` runs the points that are not
done yet, on local worker processes or on a Dask cluster, each with the code path
of ``cosinter run`` into ``DIR/points/<id>/``; ``DIR/manifest.json`` records each
point's state after every completion (atomically), and ``DIR/sweep.csv`` holds
one row per point with its parameters, status, wall time and summary metrics.

Rerunning the same sweep into the same folder skips the finished points and runs
the others again (pending, failed, or interrupted while running). A sweep file
or base case whose points differ from those of the manifest is refused.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import itertools
import json
import math
import os
import re
import shutil
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED as _FIRST_COMPLETED
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pint

from cosinter.case import (
    Case,
    load_case,
    locate_key,
    override_for,
)
from cosinter.errors import CaseError, CosinterError, InputError
from cosinter.results.validation import RunData
from cosinter.units import to_si, ureg

__all__ = [
    "Axis",
    "AxisValue",
    "Point",
    "Sweep",
    "SweepOutcome",
    "load_sweep",
    "run_point",
    "run_sweep",
    "validate_points",
]

#: Keys of a sweep file.
SWEEP_KEYS = ("base", "combine", "description", "set", "axes", "summary")
#: Keys of ``[summary]``.
SUMMARY_KEYS = ("at", "metrics")
#: Range forms of an axis.
RANGE_KEYS = ("linspace", "logspace")
#: metrics.csv columns that are not metrics.
_NOT_METRICS = ("frame", "time_s", "T_K", "steps_accepted", "steps_rejected", "wall_s")
#: Frames within this many kelvin of a ``[summary] at`` temperature count as at it.
AT_TOLERANCE_K = 0.5
#: Point states in the manifest.
State = Literal["pending", "running", "done", "failed"]

MANIFEST = "manifest.json"
TABLE = "sweep.csv"
POINTS = "points"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class AxisValue:
    """One value of an axis.

    Attributes
    ----------
    text
        Human-readable, as written or generated (``"500 degC"``, ``"30 deg"``).
    value
        The TOML value the point sets at the axis path (for a tilt axis the table
        ``{ tilt = "30 deg" }``).
    """

    text: str
    value: Any


@dataclass(frozen=True)
class Axis:
    """An axis: a dotted case-key path and its values.

    ``tilt`` marks a ``{ tilt = ... }`` axis over an orientation: its values are
    orientation tables and its SI column is ``<path>.tilt``.
    """

    path: str
    values: tuple[AxisValue, ...]
    tilt: bool = False

    @property
    def si_path(self) -> str:
        """The path of the case value the SI column reports."""
        return f"{self.path}.tilt" if self.tilt else self.path


@dataclass(frozen=True)
class Point:
    """One point of the sweep: an id and one value per axis."""

    id: str
    values: tuple[AxisValue, ...]


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep file: the base case, the axes and the expanded points."""

    file: Path
    base: Path
    combine: Literal["product", "zip"]
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]
    summary_at: tuple[tuple[str, float], ...] = ()
    summary_metrics: tuple[str, ...] | None = None
    description: str = ""
    fixed: tuple[tuple[str, Any], ...] = ()

    def overrides(self, point: Point) -> list[str]:
        """The ``--set`` overrides of ``point`` (``cosinter run BASE --set ...`` reruns it).

        First the ``[set]`` items every point shares, then one per axis.
        """
        return [f"{k}={toml_value(v)}" for k, v in self.fixed] + [
            f"{a.path}={toml_value(v.value)}" for a, v in zip(self.axes, point.values, strict=True)
        ]

    def parameters(self, point: Point) -> dict[str, str]:
        """Axis path -> human-readable value of ``point``."""
        return {a.path: v.text for a, v in zip(self.axes, point.values, strict=True)}


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` did."""

    directory: Path
    done: int
    failed: int
    pending: int
    ran: int


# --------------------------------------------------------------------------- TOML values


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    """A TOML value as text (strings, numbers, booleans, arrays, inline tables).

    Parameters
    ----------
    value
        What :mod:`tomllib` can produce (no dates).

    Returns
    -------
    str
        TOML text that :func:`tomllib.loads` reads back as ``value``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (
            f"{k if _BARE_KEY.match(k) else json.dumps(k)} = {toml_value(v)}"
            for k, v in value.items()
        )
        return "{ " + ", ".join(items) + " }" if value else "{}"
    raise TypeError(f"not a TOML value: {value!r}")


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.12g}"
    return toml_value(value)


# --------------------------------------------------------------------------- loading


class _SweepFile:
    """Error helper: CaseErrors that name the sweep file, the key and its line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def error(self, message: str, key: Sequence[str]) -> CaseError:
        line = locate_key(self.text, list(key)) if key else None
        return CaseError(message, file=str(self.path), key=_dotted(key) or None, line=line)


def _dotted(key: Sequence[str]) -> str:
    """``["axes", "layers.0.thickness"]`` -> ``axes."layers.0.thickness"``."""
    return ".".join(p if _BARE_KEY.match(p) else json.dumps(p) for p in key)


def load_sweep(path: str | Path, *, validate: bool = True) -> Sweep:
    """Read a sweep file, expand its points and (by default) validate every point.

    Parameters
    ----------
    path
        The sweep TOML file.
    validate
        Validate every point against the base case (:func:`validate_points`).

    Returns
    -------
    Sweep
        The expanded sweep.

    Raises
    ------
    CaseError
        A bad sweep file, or a point that does not validate; the message names the
        sweep file, the axis and the value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(f"cannot read the sweep file ({exc.strerror})", file=str(path)) from None
    src = _SweepFile(path, text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"not valid TOML: {exc}", file=str(path)) from None
    _check_keys(src, raw, SWEEP_KEYS, [])
    base_text = raw.get("base")
    if not isinstance(base_text, str) or not base_text:
        raise src.error(
            "`base` (required) names the base case file, relative to the sweep file", ["base"]
        )
    base = (path.parent / base_text).resolve()
    if not base.is_file():
        raise src.error(f"the base case {base_text!r} does not exist ({base})", ["base"])
    combine = raw.get("combine", "product")
    if combine not in ("product", "zip"):
        raise src.error(f"`combine` is 'product' or 'zip', got {combine!r}", ["combine"])
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise src.error("`description` is a string", ["description"])
    axes_raw = raw.get("axes")
    if not isinstance(axes_raw, dict) or not axes_raw:
        raise src.error(
            "`[axes]` (required) maps dotted case keys to values, e.g. "
            '"layers.0.thickness" = ["20 nm", "40 nm"]',
            ["axes"],
        )
    axes = tuple(_axis(src, key, spec) for key, spec in axes_raw.items())
    _check_paths(src, axes)
    at, metrics = _summary(src, raw.get("summary", {}))
    fixed = raw.get("set", {})
    if not isinstance(fixed, dict):
        raise src.error(
            '`[set]` maps dotted case keys to one value each, e.g. "mesh.cell_size" = "1 nm"',
            ["set"],
        )
    for key in fixed:
        if any(
            key == a.path or key.startswith(a.path + ".") or a.path.startswith(key + ".")
            for a in axes
        ):
            raise src.error(f"'{key}' is both in [set] and an axis", ["set", key])
    sweep = Sweep(
        file=path,
        base=base,
        combine=combine,
        axes=axes,
        points=_combine(src, axes, combine),
        summary_at=at,
        summary_metrics=metrics,
        fixed=tuple(fixed.items()),
        description=description,
    )
    if validate:
        validate_points(sweep)
    return sweep


def _check_keys(
    src: _SweepFile, table: Mapping[str, Any], allowed: Sequence[str], at: list[str]
) -> None:
    import difflib

    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise src.error(
                f"unknown key '{key}'{hint}; allowed here: {', '.join(allowed)}", [*at, key]
            )


def _check_paths(src: _SweepFile, axes: Sequence[Axis]) -> None:
    for a, b in itertools.combinations(axes, 2):
        if a.path == b.path or b.path.startswith(a.path + ".") or a.path.startswith(b.path + "."):
            raise src.error(
                f"axes '{a.path}' and '{b.path}' set the same case key; merge them into one axis",
                ["axes", b.path],
            )


def _axis(src: _SweepFile, path: str, spec: Any) -> Axis:
    key = ["axes", path]
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise src.error(f"'{path}' is not a dotted case key (e.g. 'layers.0.thickness')", key)
    if isinstance(spec, dict) and set(spec) == {"tilt"}:
        angles = _values(src, spec["tilt"], [*key, "tilt"])
        for v in angles:
            if not isinstance(v.value, str | int | float) or isinstance(v.value, bool):
                raise src.error(f"a tilt is an angle such as '30 deg', got {v.text!r}", key)
        return Axis(path, tuple(AxisValue(v.text, {"tilt": v.value}) for v in angles), tilt=True)
    return Axis(path, _values(src, spec, key))


def _values(src: _SweepFile, spec: Any, key: list[str]) -> tuple[AxisValue, ...]:
    if isinstance(spec, list):
        if not spec:
            raise src.error("an axis needs at least one value", key)
        return tuple(AxisValue(_text_of(v), v) for v in spec)
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in RANGE_KEYS:
        kind = next(iter(spec))
        return _range(src, kind, spec[kind], [*key, kind])
    raise src.error(
        "an axis is a list of values (['500 degC', '600 degC']), "
        "{ linspace = [start, stop, n] }, { logspace = [start, stop, n] } or, for an "
        "orientation, { tilt = <list or range> }; a single table value goes in a list: "
        f"[{{ plane = [1, 0, 4] }}]; got {_text_of(spec)}",
        key,
    )


_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _range(src: _SweepFile, kind: str, spec: Any, key: list[str]) -> tuple[AxisValue, ...]:
    """``linspace``/``logspace`` = [start, stop, n] -> values in the unit of ``start``."""
    if (
        not isinstance(spec, list)
        or len(spec) != 3
        or not isinstance(spec[2], int)
        or isinstance(spec[2], bool)
        or spec[2] < 1
    ):
        raise src.error(
            f"{kind} takes [start, stop, n] with n a positive integer, e.g. "
            f"['0 deg', '90 deg', 7]; got {_text_of(spec)}",
            key,
        )
    start, stop, n = spec
    unit = ""
    try:
        if isinstance(start, str) or isinstance(stop, str):
            q0: Any = ureg.Quantity(str(start).strip())
            q1: Any = ureg.Quantity(str(stop).strip())
            a = float(q0.magnitude)
            b = float(q1.to(q0.units).magnitude)
            number = _NUMBER.match(str(start))
            # the unit as the user wrote it ("degC", "m^2/s"), else pint's spelling
            unit = str(start)[number.end() :].strip() if number else ""
            unit = unit or f"{q0.units:~C}"
        else:
            a, b = float(start), float(stop)
    except pint.DimensionalityError:
        raise src.error(f"{kind}: {start!r} and {stop!r} have different dimensions", key) from None
    except Exception as exc:  # pint raises several unrelated types
        raise src.error(
            f"{kind}: cannot read {start!r} / {stop!r} as quantities ({exc})", key
        ) from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise src.error(f"{kind}: start and stop must be finite", key)
    if kind == "logspace":
        if a <= 0 or b <= 0:
            raise src.error(
                f"logspace needs positive start and stop (in the unit of start), got "
                f"{_text_of(start)} and {_text_of(stop)}",
                key,
            )
        numbers = np.geomspace(a, b, n)
    else:
        numbers = np.linspace(a, b, n)
    out = []
    for x in numbers:
        text = f"{float(x):.12g}"
        if unit:
            out.append(AxisValue(f"{text} {unit}", f"{text} {unit}"))
        else:
            x_float = float(text)
            integers = isinstance(start, int) and isinstance(stop, int) and x_float.is_integer()
            out.append(AxisValue(text, int(x_float) if integers else x_float))
    return tuple(out)


def _summary(
    src: _SweepFile, spec: Any
) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...] | None]:
    if not isinstance(spec, dict):
        raise src.error("`[summary]` is a table with optional `at` and `metrics`", ["summary"])
    _check_keys(src, spec, SUMMARY_KEYS, ["summary"])
    at_raw = spec.get("at", [])
    if not isinstance(at_raw, list):
        raise src.error(
            "`at` is a list of temperatures, e.g. ['450 degC', '700 degC']", ["summary", "at"]
        )
    at: list[tuple[str, float]] = []
    for item in at_raw:
        try:
            T = to_si(item, "temperature")
        except (ValueError, TypeError) as exc:
            raise src.error(f"`at`: {exc}", ["summary", "at"]) from None
        at.append((_text_of(item), T))
    metrics = spec.get("metrics")
    if metrics is not None and (
        not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics)
    ):
        raise src.error(
            "`metrics` is a list of metrics.csv column names, e.g. ['asr_ohm_m2']",
            ["summary", "metrics"],
        )
    return tuple(at), (tuple(metrics) if metrics is not None else None)


def _combine(src: _SweepFile, axes: Sequence[Axis], combine: str) -> tuple[Point, ...]:
    if combine == "zip":
        lengths = {a.path: len(a.values) for a in axes}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"'{p}' has {n}" for p, n in lengths.items())
            raise src.error(
                f"combine = 'zip' needs axes of equal length: {listed} values", ["combine"]
            )
        rows: Iterable[tuple[AxisValue, ...]] = zip(*(a.values for a in axes), strict=True)
    else:
        rows = itertools.product(*(a.values for a in axes))
    rows = list(rows)
    width = max(3, len(str(len(rows) - 1)))
    return tuple(Point(f"p{k:0{width}d}", tuple(r)) for k, r in enumerate(rows))


# --------------------------------------------------------------------------- validation


def _value_at(case: Case, path: str) -> Any:
    """The validated (SI) value at a dotted path of ``case``; None if not there."""
    node: Any = case
    for part in path.split("."):
        if isinstance(node, list | tuple):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                return None
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            node = getattr(node, part, None)
        if node is None:
            return None
    return node


def _si_number(value: Any) -> float | None:
    """An SI float from a validated value (a number, or equal principal values)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    numbers = isinstance(value, tuple) and value and all(isinstance(v, int | float) for v in value)
    if numbers and all(v == value[0] for v in value):
        return float(value[0])
    return None


def _si_unit(path: str) -> str:
    """SI unit of the schema field at a dotted path of a case ("1" if it has none)."""
    annotation: Any = Case
    unit: str | None = None
    for part in path.split("."):
        found = _step(annotation, part)
        if found is None:
            return "1"
        annotation, info = found
        if info is not None:  # a field: its own unit, or that of its type
            unit = _unit_of(info.json_schema_extra) or _unit_in(annotation)
    return unit or "1"


def _step(annotation: Any, part: str) -> tuple[Any, Any] | None:
    """Annotation one path part below ``annotation`` and the field info, if a field."""
    import types
    import typing

    from pydantic import BaseModel

    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _step(arg, part)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(part)
        return (info.annotation, info) if info is not None else None
    if origin is dict:
        return typing.get_args(annotation)[1], None
    if origin in (list, tuple) and part.lstrip("-").isdigit():
        return typing.get_args(annotation)[0], None
    return None


def _unit_of(extra: Any) -> str | None:
    return str(extra["unit"]) if isinstance(extra, dict) and extra.get("unit") else None


def _unit_in(annotation: Any) -> str | None:
    """The first ``json_schema_extra`` unit inside an annotation."""
    import typing

    from pydantic.fields import FieldInfo

    for arg in typing.get_args(annotation):
        if isinstance(arg, FieldInfo) and _unit_of(arg.json_schema_extra):
            return _unit_of(arg.json_schema_extra)
        found = _unit_in(arg)
        if found:
            return found
    return None


def validate_points(sweep: Sweep) -> dict[str, Case]:
    """Validate every point (case schema, then resolution as ``cosinter check`` does).

    Returns
    -------
    dict
        Point id -> validated case.

    Raises
    ------
    CaseError
        The first point that does not validate, naming the sweep file, the axis
        responsible and its value.
    """
    from cosinter.solver.simulation import Simulation

    src = _SweepFile(sweep.file, sweep.file.read_text(encoding="utf-8"))
    cases: dict[str, Case] = {}
    for point in sweep.points:
        overrides = sweep.overrides(point)
        try:
            case, raw = load_case(sweep.base, overrides)
            Simulation(case, raw, source=str(sweep.base))
        except InputError as exc:
            raise _point_error(src, sweep, point, overrides, exc) from None
        cases[point.id] = case
    return cases


def _point_error(
    src: _SweepFile, sweep: Sweep, point: Point, overrides: Sequence[str], exc: InputError
) -> CaseError:
    key = getattr(exc, "key", None)
    detail = getattr(exc, "detail", str(exc))
    item = override_for(key, overrides) if key else None
    if item is not None:
        detail = detail.removesuffix(f" [from --set {item}]")
    base_rel = os.path.relpath(sweep.base, sweep.file.parent)
    where = f" (base case key '{key}')" if key else ""
    if item is not None:
        index = overrides.index(item) - len(sweep.fixed)
        if index < 0:
            name = sweep.fixed[index + len(sweep.fixed)][0]
            return src.error(
                f"point {point.id}: [set] {name} does not validate with the base case "
                f"{base_rel}{where}: {detail}{_library_hint(sweep, name)}",
                ["set", name],
            )
        axis, value = sweep.axes[index], point.values[index]
        hint = _library_hint(sweep, axis.path)
        return src.error(
            f"point {point.id}: {axis.path} = {value.text!r} does not validate with the base "
            f"case {base_rel}{where}: {detail}{hint}",
            ["axes", axis.path],
        )
    values = ", ".join(
        f"{a.path} = {v.text!r}" for a, v in zip(sweep.axes, point.values, strict=True)
    )
    return src.error(
        f"point {point.id} ({values}) does not validate with the base case {base_rel}{where}: "
        f"{detail}",
        ["axes"],
    )


def _library_hint(sweep: Sweep, path: str) -> str:
    """A hint when an axis sets one key of a library material the base does not define."""
    parts = path.split(".")
    if len(parts) < 3 or parts[0] != "materials":
        return ""
    from cosinter.models.materials import library_names

    try:
        raw = tomllib.loads(sweep.base.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    name = parts[1]
    if name in library_names() and name not in raw.get("materials", {}):
        return (
            f" (to change single keys of the library entry {name}, give the base case "
            f'[materials.{name}] with base = "{name}")'
        )
    return ""


# --------------------------------------------------------------------------- one point


def run_point(
    base: str, overrides: Sequence[str], directory: str, resume: bool = False
) -> dict[str, Any]:
    """Run one point: the code path of ``cosinter run BASE -o DIR --set ...``.

    Runs in a worker process (local pool or Dask worker) and never raises: a
    failure is returned with its error text, so one point cannot stop the others.
    With ``resume`` (a point an interrupted sweep left running) the run continues
    from its last complete frame (``cosinter run --resume``); otherwise an existing
    ``directory`` (left by a failed attempt) is removed first.

    Returns
    -------
    dict
        ``state`` ("done" or "failed"), ``error`` (text or None), ``wall_s``.
    """
    t0 = time.perf_counter()
    out = Path(directory)
    try:
        from cosinter.solver.simulation import Simulation

        case, raw = load_case(base, list(overrides))
        sim = Simulation(case, raw, source=str(base))
        if out.exists() and not resume:
            shutil.rmtree(out)
        sim.run(out, progress=False, resume=resume)
    except Exception as exc:  # recorded in the manifest; the sweep goes on
        kind = "" if isinstance(exc, CosinterError) else f"{type(exc).__name__}: "
        return {"state": "failed", "error": f"{kind}{exc}", "wall_s": time.perf_counter() - t0}
    return {"state": "done", "error": None, "wall_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- manifest


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _new_manifest(sweep: Sweep) -> dict[str, Any]:
    from cosinter import __version__

    return {
        "sweep_file": str(sweep.file.resolve()),
        "base": str(sweep.base),
        "base_sha256": _sha256(sweep.base),
        "combine": sweep.combine,
        "axes": [
            {"path": a.path, "tilt": a.tilt, "values": [v.text for v in a.values]}
            for a in sweep.axes
        ],
        "cosinter_version": __version__,
        "created": _now(),
        "updated": _now(),
        "points": [
            {
                "id": p.id,
                "parameters": sweep.parameters(p),
                "overrides": sweep.overrides(p),
                "state": "pending",
                "error": None,
                "wall_s": None,
                "runs": 0,
                "started": None,
                "finished": None,
            }
            for p in sweep.points
        ],
    }


def _compatible(sweep: Sweep, manifest: Mapping[str, Any], directory: Path) -> None:
    """Refuse to continue a manifest whose points differ from the sweep's."""
    redo = f"use a new output folder (or delete {directory / MANIFEST} to start over)"
    if manifest.get("base_sha256") != _sha256(sweep.base):
        raise InputError(
            f"{directory}: the base case {sweep.base} changed since this sweep started, so "
            f"its finished points no longer match it; {redo}"
        )
    old = [(p["id"], list(p["overrides"])) for p in manifest.get("points", [])]
    new = [(p.id, sweep.overrides(p)) for p in sweep.points]
    if old == new:
        return
    if len(old) != len(new):
        what = f"the sweep now has {len(new)} points, the manifest {len(old)}"
    else:
        k = next(i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b)
        what = (
            f"point {new[k][0]} now sets {'; '.join(new[k][1])}, the manifest "
            f"{'; '.join(old[k][1])}"
        )
    raise InputError(f"{directory}: the sweep's points differ from {MANIFEST} ({what}); {redo}")


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    from cosinter.results.writers import write_json

    manifest["updated"] = _now()
    write_json(path, manifest)


# --------------------------------------------------------------------------- summary


def _read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _at_label(text: str) -> str:
    return re.sub(r"\s+", "", text)


def point_summary(sweep: Sweep, directory: Path) -> dict[str, float | str]:
    """Summary metrics of a finished point folder (the sweep.csv columns after wall_s).

    ``<metric>@end``: the last frame; ``<metric>@<T>``: the first frame within
    0.5 K of each ``[summary] at`` temperature (empty if none);
    ``onset_<metric>_K``: the onset temperature from onsets.json (empty if none).
    """
    out: dict[str, float | str] = {}
    metrics_csv = directory / "metrics.csv"
    if metrics_csv.is_file():
        header, rows = _read_metrics(metrics_csv)
        names = [h for h in header if h not in _NOT_METRICS]
        if sweep.summary_metrics is not None:
            names = [h for h in names if h in sweep.summary_metrics]
        last = rows[-1] if rows else {}
        for name in names:
            out[f"{name}@end"] = _float(last.get(name))
        frames = RunData(rows, {})
        for text, T in sweep.summary_at:
            row = frames.frame(T - 273.15, AT_TOLERANCE_K)
            for name in names:
                out[f"{name}@{_at_label(text)}"] = _float(row.get(name)) if row else ""
    onsets_json = directory / "onsets.json"
    if onsets_json.is_file():
        onsets = json.loads(onsets_json.read_text(encoding="utf-8")).get("onsets", {})
        for name, onset in onsets.items():
            if sweep.summary_metrics is not None and name not in sweep.summary_metrics:
                continue
            out[f"onset_{name}_K"] = float(onset["T_K"]) if onset else ""
    return out


def _float(text: str | None) -> float | str:
    try:
        return float(text) if text not in (None, "") else ""
    except ValueError:
        return ""


def write_table(
    sweep: Sweep,
    directory: Path,
    manifest: Mapping[str, Any],
    cases: Mapping[str, Case],
    summaries: Mapping[str, Mapping[str, float | str]],
) -> Path:
    """Write ``DIR/sweep.csv`` atomically: one row per point, in point order.

    Columns: ``id``; each axis as written (``<path>``); each numeric axis in SI
    (``<path> [<unit>]``, a tilt axis as ``<path>.tilt [rad]``); ``status``;
    ``wall_s``; then the summary metrics of :func:`point_summary`.
    """
    from cosinter.results.writers import atomic_write_text

    si: dict[str, dict[str, float]] = {}  # SI column -> point id -> value
    for axis in sweep.axes:
        values = {
            pid: v
            for pid, case in cases.items()
            if (v := _si_number(_value_at(case, axis.si_path))) is not None
        }
        if values:
            si[f"{axis.si_path} [{_si_unit(axis.si_path)}]"] = values
    metric_columns: dict[str, None] = {}
    for point in sweep.points:
        metric_columns.update(dict.fromkeys(summaries.get(point.id, {})))
    header = ["id", *(a.path for a in sweep.axes), *si, "status", "wall_s", *metric_columns]
    by_id = {p["id"]: p for p in manifest["points"]}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for point in sweep.points:
        entry = by_id[point.id]
        wall = entry.get("wall_s")
        summary = summaries.get(point.id, {})
        writer.writerow(
            [
                point.id,
                *(v.text for v in point.values),
                *(_cell(values.get(point.id, "")) for values in si.values()),
                entry["state"],
                f"{wall:.3f}" if isinstance(wall, int | float) else "",
                *(_cell(summary.get(name, "")) for name in metric_columns),
            ]
        )
    path = directory / TABLE
    atomic_write_text(path, buffer.getvalue())
    return path


def _cell(value: float | str) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- running


class _Progress:
    """A rich progress bar with done / failed / left, or nothing."""

    def __init__(self, total: int, done: int, failed: int, enabled: bool) -> None:
        self.enabled = enabled
        self.done, self.failed, self.total = done, failed, total
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("sweep"),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                "sweep", total=self.total, completed=self.done + self.failed, counts=self._counts()
            )
        return self

    def _counts(self) -> str:
        left = self.total - self.done - self.failed
        return f"done {self.done}  failed {self.failed}  left {left}"

    def update(self, state: str) -> None:
        if state == "done":
            self.done += 1
        else:
            self.failed += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, counts=self._counts())

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _local_submitter(
    workers: int,
) -> tuple[Callable[..., Future[dict[str, Any]]], Callable[[bool], None], int]:
    """Submit to ``workers`` local processes; ``close(interrupted)`` ends them."""
    import multiprocessing

    # spawn: fresh interpreters, safe next to the threads of the progress bar
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def close(interrupted: bool) -> None:
        if interrupted:  # do not wait for running points: their folders are redone
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=not interrupted, cancel_futures=True)

    return pool.submit, close, workers


def _dask_submitter(address: str) -> tuple[Callable[..., Any], Callable[[bool], None], int]:
    """Submit to the Dask scheduler at ``address``; ``close(interrupted)`` disconnects."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency
        raise CosinterError(
            "--scheduler needs dask.distributed (pip install 'dask[distributed]')"
        ) from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise CosinterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"--scheduler {address}: {exc}") from None

    def submit(fn: Callable[..., Any], *args: Any) -> Any:
        return client.submit(fn, *args, pure=False)

    def close(interrupted: bool) -> None:
        client.close()  # the run loop cancelled what was still running

    # a window as large as the cluster's threads keeps every worker busy
    threads = sum(client.nthreads().values()) or 1
    return submit, close, max(threads * 2, 1)


def run_sweep(
    sweep: Sweep,
    directory: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    cases: Mapping[str, Case] | None = None,
) -> SweepOutcome:
    """Run the points of ``sweep`` that are not done yet; write manifest and sweep.csv.

    Parameters
    ----------
    sweep
        A loaded (and validated) sweep.
    directory
        Output folder: ``points/<id>/``, ``manifest.json``, ``sweep.csv``.
    workers
        Local worker processes; default :func:`os.cpu_count`. Ignored with
        ``scheduler``.
    scheduler
        Address of a Dask scheduler (``tcp://HOST:PORT``): send the points there.
    progress
        Show a progress bar (done / failed / left).
    cases
        Validated case per point id (from :func:`validate_points`), for the SI
        columns of sweep.csv; validated here if not given.

    Returns
    -------
    SweepOutcome
        Counts of done, failed and pending points, and how many ran now.

    Raises
    ------
    InputError
        The folder holds a manifest of different points.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / POINTS).mkdir(exist_ok=True)
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{manifest_path}: not readable JSON ({exc})") from None
        _compatible(sweep, manifest, out)
    else:
        manifest = _new_manifest(sweep)
    if cases is None:
        cases = validate_points(sweep)
    entries = {p["id"]: p for p in manifest["points"]}
    # interrupted points (left running, or sent back to pending) resume from their
    # checkpoint; failed ones start again
    resume = {i for i, e in entries.items() if e["state"] in ("running", "pending")}
    for entry in entries.values():
        if entry["state"] == "running":
            entry["state"] = "pending"
    todo = [p for p in sweep.points if entries[p.id]["state"] != "done"]
    summaries: dict[str, dict[str, float | str]] = {
        p.id: point_summary(sweep, out / POINTS / p.id)
        for p in sweep.points
        if entries[p.id]["state"] == "done"
    }
    _write_manifest(manifest_path, manifest)
    write_table(sweep, out, manifest, cases, summaries)
    done = sum(e["state"] == "done" for e in entries.values())
    ran = 0
    if todo:
        if scheduler:
            submit, close, window = _dask_submitter(scheduler)
        else:
            n = workers if workers is not None else (os.cpu_count() or 1)
            submit, close, window = _local_submitter(max(1, min(n, len(todo))))
        queue: Iterator[Point] = iter(todo)
        running: dict[Any, Point] = {}

        def launch() -> None:
            for point in itertools.islice(queue, max(0, window - len(running))):
                entry = entries[point.id]
                entry.update(state="running", started=_now(), finished=None, error=None)
                entry["runs"] = int(entry.get("runs", 0)) + 1
                future = submit(
                    run_point,
                    str(sweep.base),
                    sweep.overrides(point),
                    str((out / POINTS / point.id).resolve()),
                    point.id in resume,
                )
                running[future] = point

        interrupted = True
        try:
            with _Progress(len(sweep.points), done, 0, progress) as bar:
                launch()
                _write_manifest(manifest_path, manifest)
                while running:
                    finished = _wait_any(list(running), scheduler is not None)
                    for future in finished:
                        point = running.pop(future)
                        result = _result_of(future)
                        entry = entries[point.id]
                        entry.update(
                            state=result["state"],
                            error=result["error"],
                            wall_s=result["wall_s"],
                            finished=_now(),
                        )
                        ran += 1
                        if result["state"] == "done":
                            summaries[point.id] = point_summary(sweep, out / POINTS / point.id)
                        bar.update(result["state"])
                    launch()
                    _write_manifest(manifest_path, manifest)
                    write_table(sweep, out, manifest, cases, summaries)
            interrupted = False
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM as KeyboardInterrupt): what is still running
            # goes back to pending, every finished point is already in the manifest
            for future, point in running.items():
                future.cancel()
                entries[point.id]["state"] = "pending"
            _write_manifest(manifest_path, manifest)
            raise
        finally:
            close(interrupted)
    states = [e["state"] for e in entries.values()]
    write_table(sweep, out, manifest, cases, summaries)
    return SweepOutcome(
        directory=out,
        done=states.count("done"),
        failed=states.count("failed"),
        pending=states.count("pending") + states.count("running"),
        ran=ran,
    )


def _wait_any(futures: list[Any], dask: bool) -> list[Any]:
    if dask:
        from distributed import wait as dask_wait

        return list(dask_wait(futures, return_when="FIRST_COMPLETED").done)
    return list(wait(futures, return_when=_FIRST_COMPLETED).done)


def _result_of(future: Any) -> dict[str, Any]:
    """The point's result; a worker that died is a failed point, not a failed sweep."""
    try:
        result = future.result()
    except Exception as exc:
        return {
            "state": "failed",
            "error": f"worker failed: {type(exc).__name__}: {exc}",
            "wall_s": None,
        }
    return dict(result)
