"""Checkpoints: what a killed run needs to continue where it stopped (``--resume``).

A run rewrites one file, ``DIR/checkpoint.npz``, after every frame, once the
frame's VTU, the PVD, ``profiles.csv``, ``metrics.csv`` and ``onsets.json`` are
complete; it is written atomically (temporary file, then :func:`os.replace`), so
it always describes the last complete frame. Only the latest checkpoint is kept:
the disk use is one snapshot of the fields, whatever the number of frames.

The file is a NumPy ``.npz`` archive (read with ``numpy.load(path,
allow_pickle=False)``) of float64 arrays, one value per cell, plus ``meta``, a
UTF-8 JSON document stored as a uint8 array (:func:`read_checkpoint` decodes it).
The arrays and the meta keys are listed in the user documentation (outputs page);
what they hold is decided by :mod:`cosinter.solver.simulation`, this module only
stores, loads and compares them.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cosinter.errors import InputError
from cosinter.results.writers import atomic_path

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT_VERSION",
    "Checkpoint",
    "canonical",
    "case_changes",
    "checkpoint_path",
    "flatten",
    "read_checkpoint",
    "sha256_of",
    "write_checkpoint",
]

#: File name of the checkpoint in a run folder.
CHECKPOINT_NAME = "checkpoint.npz"

#: Version of the checkpoint layout; a different one is not resumed.
FORMAT_VERSION = 1

_META = "meta"


@dataclass
class Checkpoint:
    """A checkpoint in memory.

    Attributes
    ----------
    meta
        JSON-able scalars, lists and tables (see the outputs documentation).
    arrays
        Float64 arrays by name, e.g. ``c/Li`` (mol/m^3), ``phi`` (V), ``eta`` (-),
        ``rate/Li`` (mol m^-3 s^-1).
    """

    meta: dict[str, Any]
    arrays: dict[str, NDArray[np.float64]] = field(default_factory=dict)

    @property
    def frame(self) -> int:
        """Number of the frame the checkpoint was taken at."""
        return int(self.meta["frame"])


def checkpoint_path(directory: str | Path) -> Path:
    """The checkpoint file of a run folder.

    Parameters
    ----------
    directory
        Run folder.

    Returns
    -------
    Path
        ``directory / CHECKPOINT_NAME``.
    """
    return Path(directory) / CHECKPOINT_NAME


def canonical(obj: Any) -> Any:
    """``obj`` as plain JSON data (tuples become lists, keys strings), via a round trip.

    Floats keep every bit (JSON writes their shortest round-trip repr); infinities
    and NaN are kept too (Python's JSON extension).

    Parameters
    ----------
    obj
        JSON-able data (NumPy scalars and arrays are converted, other objects
        JSON does not know become their ``str``).

    Returns
    -------
    Any
        The same data as :func:`json.loads` returns it.
    """
    return json.loads(json.dumps(obj, default=_to_json))


def _to_json(obj: Any) -> Any:
    """NumPy data as Python; anything else JSON does not know (paths, dates) as text."""
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    return str(obj)


def sha256_of(obj: Any) -> str:
    """SHA-256 (hex) of ``obj`` serialised as JSON with sorted keys.

    Parameters
    ----------
    obj
        JSON-able data.

    Returns
    -------
    str
        64 hex digits; equal for equal data whatever the key order.
    """
    text = json.dumps(canonical(obj), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write a checkpoint atomically (uncompressed ``.npz``).

    Parameters
    ----------
    path
        Destination, normally :func:`checkpoint_path` of the run folder.
    checkpoint
        What to write; ``meta`` must be JSON-able.
    """
    meta = np.frombuffer(json.dumps(canonical(checkpoint.meta)).encode("utf-8"), dtype=np.uint8)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in checkpoint.arrays.items()}
    if _META in arrays:
        raise ValueError(f"array name {_META!r} is reserved")
    savez: Any = np.savez  # its stubs type **kwds like allow_pickle
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        savez(fh, **{_META: meta}, **arrays)


def read_checkpoint(path: str | Path) -> Checkpoint | None:
    """Read a checkpoint; ``None`` if the file does not exist.

    Parameters
    ----------
    path
        The ``.npz`` file.

    Returns
    -------
    Checkpoint or None
        Its content, arrays as float64 copies.

    Raises
    ------
    InputError
        The file is not a cosinter checkpoint or has another layout version.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data[_META]).decode("utf-8"))
            arrays = {k: np.array(data[k], dtype=np.float64) for k in data.files if k != _META}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: not a readable cosinter checkpoint ({exc}); run without --resume "
            "to start over"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise InputError(
            f"{path}: checkpoint layout {found!r}, this cosinter reads {FORMAT_VERSION}; "
            "run without --resume to start over"
        )
    return Checkpoint(meta=meta, arrays=arrays)


# --------------------------------------------------------------------------- differences

_ABSENT = object()


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts and lists by dotted path (list items by index).

    Parameters
    ----------
    obj
        JSON-like data.
    prefix
        Path of ``obj`` itself.

    Returns
    -------
    dict
        ``{"temperature.steps.0.to": 973.15, ...}``; an empty dict or list is a
        leaf of its own.

    Examples
    --------
    >>> flatten({"a": {"b": [1, {"c": 2}]}})
    {'a.b.0': 1, 'a.b.1.c': 2}
    """
    items: list[tuple[str, Any]]
    if isinstance(obj, Mapping) and obj:
        items = [(str(k), v) for k, v in obj.items()]
    elif isinstance(obj, list | tuple) and obj:
        items = [(str(i), v) for i, v in enumerate(obj)]
    else:
        return {prefix: obj}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def _lookup(obj: Any, path: str) -> Any:
    """The value at a dotted path, or ``_ABSENT``."""
    for part in path.split("."):
        if isinstance(obj, Mapping) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list | tuple) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return _ABSENT
    return obj


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def case_changes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    old_raw: Mapping[str, Any] | None = None,
    new_raw: Mapping[str, Any] | None = None,
) -> list[str]:
    """The differences between two resolved cases, one line per changed key.

    The comparison is on the resolved values (SI); where the case files write the
    key, their values (with units) are shown first, e.g.
    ``"temperature.steps.0.to: 700 degC -> 650 degC (SI: 973.15 -> 923.15)"``.
    A key written differently but resolving to the same value is no change.

    Parameters
    ----------
    old, new
        Resolved data (e.g. the case's ``model_dump(mode="json")``), JSON-like.
    old_raw, new_raw
        The case files' data (after ``--set``), to show values as written.

    Returns
    -------
    list of str
        Sorted by key path; empty when nothing changed.
    """
    a, b = flatten(canonical(old)), flatten(canonical(new))
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if va is not _ABSENT and vb is not _ABSENT and va == vb:
            continue
        if va != va and vb != vb:  # both NaN
            continue
        line = f"{key}: {_show(va)} -> {_show(vb)}"
        if old_raw is not None and new_raw is not None:
            ra, rb = _lookup(old_raw, key), _lookup(new_raw, key)
            if (ra is not _ABSENT or rb is not _ABSENT) and ra != rb:
                line = f"{key}: {_show(ra)} -> {_show(rb)} (SI: {_show(va)} -> {_show(vb)})"
        lines.append(line)
    return lines
