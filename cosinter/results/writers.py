"""Atomic writers for run outputs: JSON, CSV tables and VTU/PVD time series.

Every file is first written to a hidden temporary file in the target directory and
then moved into place with :func:`os.replace`, so a killed run leaves each finished
file either complete or absent, never truncated.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import meshio
import numpy as np

__all__ = [
    "CsvTable",
    "PvdSeries",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "write_vtu",
]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` when the block succeeds.

    The temporary file lives in the same directory (so the rename is atomic), its name
    starts with ``'.'`` and it keeps the suffix of ``path`` (so writers that pick the
    format from the extension, like meshio or matplotlib, still work). On an
    exception the temporary file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path
        Final destination; its directory must exist.

    Yields
    ------
    Path
        Where the caller should write.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path
        Destination file.
    data
        Content.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Parameters
    ----------
    path
        Destination file.
    text
        Content.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    """Convert what :mod:`json` does not know (NumPy types, paths) to Python."""
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically, keeping key order.

    Parameters
    ----------
    path
        Destination file.
    obj
        JSON-able object; NumPy scalars and arrays, paths and sets are converted.
    """
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


# --------------------------------------------------------------------------- VTU / PVD

_CELL_TYPES = {1: "line", 2: "quad", 3: "hexahedron"}


def _faces(name: str, faces: np.ndarray) -> np.ndarray:
    """Validate one axis of face coordinates."""
    f = np.asarray(faces, dtype=np.float64)
    if f.ndim != 1 or f.size < 2 or not np.all(np.diff(f) > 0):
        raise ValueError(f"{name} must be a strictly increasing 1D array of at least 2 values")
    return f


def _rectilinear_cells(axes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Points and cell connectivity of a rectilinear grid, x index fastest.

    Parameters
    ----------
    axes
        Face coordinates along x, then y and z if present.

    Returns
    -------
    points, cells
        ``(n_points, 3)`` coordinates and ``(n_cells, 2**dim)`` node ids in VTK order.
    """
    dim = len(axes)
    nodes = axes + [np.zeros(1)] * (3 - dim)  # missing axes: one node at 0
    X, Y, Z = np.meshgrid(*nodes, indexing="ij")
    points = np.column_stack([a.ravel(order="F") for a in (X, Y, Z)])
    npx, npy = len(nodes[0]), len(nodes[1])
    ncells = [len(a) - 1 for a in axes] + [1] * (3 - dim)
    ci, cj, ck = (a.ravel(order="F") for a in np.meshgrid(*map(np.arange, ncells), indexing="ij"))

    def nid(di: int, dj: int, dk: int) -> np.ndarray:
        return (ci + di) + npx * ((cj + dj) + npy * (ck + dk))

    # VTK node order: line 0-1; quad counter-clockwise; hexahedron bottom then top face
    ring = [(0, 0), (1, 0), (1, 1), (0, 1)]
    if dim == 1:
        corners = [(0, 0, 0), (1, 0, 0)]
    elif dim == 2:
        corners = [(a, b, 0) for a, b in ring]
    else:
        corners = [(a, b, c) for c in (0, 1) for a, b in ring]
    cells = np.column_stack([nid(*c) for c in corners]).astype(np.int64)
    return points, cells


def _cell_array(name: str, values: np.ndarray, n_cells: int) -> np.ndarray:
    """Check length and normalise dtype: float64, or integers kept as integers."""
    a = np.asarray(values)
    if a.shape[:1] != (n_cells,) or a.ndim > 2:
        raise ValueError(f"cell data {name!r} has shape {a.shape}, expected ({n_cells},)")
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        return a
    return a.astype(np.float64)


def _field_data_xml(field_data: Mapping[str, float]) -> bytes:
    """A VTK XML ``<FieldData>`` block of one-element Float64 arrays (full precision)."""
    arrays = "".join(
        f'<DataArray type="Float64" Name="{name}" NumberOfTuples="1" format="ascii">'
        f"{float(value)!r}</DataArray>\n"
        for name, value in field_data.items()
    )
    return f"<FieldData>\n{arrays}</FieldData>\n".encode()


def write_vtu(
    path: Path,
    x_faces: np.ndarray,
    y_faces: np.ndarray | None,
    z_faces: np.ndarray | None,
    cell_data: Mapping[str, np.ndarray],
    field_data: Mapping[str, float],
) -> None:
    """Write a rectilinear grid as an unstructured VTU file, atomically.

    Parameters
    ----------
    path
        Destination ``.vtu`` file.
    x_faces, y_faces, z_faces
        Face (node) coordinates along each axis in m; ``y_faces``/``z_faces`` are
        ``None`` in 1D, ``z_faces`` is ``None`` in 2D. Cells are lines (points at
        ``(x, 0, 0)``), quads or hexahedra.
    cell_data
        One value per cell, cell id ``i + nx*(j + ny*k)`` (x index fastest). Floats
        are written as float64, integer arrays (e.g. ``material``) as integers.
    field_data
        Scalars stored as one-element arrays (e.g. ``time_s``, ``T_K``).

    Raises
    ------
    ValueError
        On bad face arrays or cell data of the wrong length.
    """
    if z_faces is not None and y_faces is None:
        raise ValueError("z_faces given without y_faces")
    axes = [
        _faces(n, f)
        for n, f in (("x_faces", x_faces), ("y_faces", y_faces), ("z_faces", z_faces))
        if f is not None
    ]
    points, cells = _rectilinear_cells(axes)
    data = {k: [_cell_array(k, v, len(cells))] for k, v in cell_data.items()}
    mesh = meshio.Mesh(points, [(_CELL_TYPES[len(axes)], cells)], cell_data=data)
    with atomic_path(Path(path)) as tmp:
        mesh.write(tmp, file_format="vtu", binary=True)
        if field_data:
            # meshio 5.3 silently drops field_data for VTU: splice a <FieldData> block in
            raw = tmp.read_bytes()
            tag = b"<UnstructuredGrid>\n"
            if tag not in raw:
                raise RuntimeError("unexpected meshio VTU layout: no <UnstructuredGrid> tag")
            tmp.write_bytes(raw.replace(tag, tag + _field_data_xml(field_data), 1))


class PvdSeries:
    """A ParaView time series: ``DIR/<name>.pvd`` plus ``DIR/<name>/frame_NNNN.vtu``.

    Frames are numbered from 0 by this instance; each :meth:`add_frame` writes the VTU
    and then rewrites the PVD, both atomically, so the PVD only ever lists complete
    frames.

    Parameters
    ----------
    directory
        Run directory (created if missing).
    name
        Base name of the ``.pvd`` file and of the frame folder.
    """

    def __init__(self, directory: Path, name: str = "fields") -> None:
        self.directory = Path(directory)
        self.name = name
        self.pvd_path = self.directory / f"{name}.pvd"
        self.frame_dir = self.directory / name
        #: ``(time_s, path)`` of every frame written so far.
        self.frames: list[tuple[float, Path]] = []

    def clear(self) -> None:
        """Remove an existing PVD, its frames and leftover temporary files."""
        for pattern in (f"{self.name}.pvd", f".{self.name}.*.pvd"):
            for p in self.directory.glob(pattern):
                p.unlink(missing_ok=True)
        if self.frame_dir.is_dir():
            for pattern in ("frame_*.vtu", ".frame_*.vtu"):
                for p in self.frame_dir.glob(pattern):
                    p.unlink(missing_ok=True)
        self.frames = []

    def restore(self, times: Sequence[float]) -> None:
        """Take over the first ``len(times)`` frames already on disk (a resumed run).

        Frames beyond them (written after the last checkpoint) and leftover temporary
        files are removed, and the PVD is rewritten to list exactly these frames.

        Parameters
        ----------
        times
            Simulated time (s) of each frame to keep, in frame order.

        Raises
        ------
        FileNotFoundError
            A frame to keep is missing.
        """
        kept = [self.frame_dir / f"frame_{k:04d}.vtu" for k in range(len(times))]
        for path in kept:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: frame missing")
        keep = set(kept)
        for p in self.frame_dir.glob("frame_*.vtu"):
            if p not in keep:
                p.unlink(missing_ok=True)
        for pattern in (".frame_*.vtu",):
            for p in self.frame_dir.glob(pattern):
                p.unlink(missing_ok=True)
        for p in self.directory.glob(f".{self.name}.*.pvd"):
            p.unlink(missing_ok=True)
        self.frames = [(float(t), path) for t, path in zip(times, kept, strict=True)]
        atomic_write_text(self.pvd_path, self._pvd_text())

    def add_frame(
        self,
        time_s: float,
        T_K: float,
        x_faces: np.ndarray,
        y_faces: np.ndarray | None,
        z_faces: np.ndarray | None,
        cell_data: Mapping[str, np.ndarray],
    ) -> Path:
        """Write the next frame and update the PVD.

        Parameters
        ----------
        time_s
            Simulated time in s (the PVD timestep and VTU field data ``time_s``).
        T_K
            Temperature in K (VTU field data ``T_K``).
        x_faces, y_faces, z_faces, cell_data
            As in :func:`write_vtu`.

        Returns
        -------
        Path
            The VTU file written.
        """
        self.frame_dir.mkdir(parents=True, exist_ok=True)
        path = self.frame_dir / f"frame_{len(self.frames):04d}.vtu"
        field = {"time_s": float(time_s), "T_K": float(T_K)}
        write_vtu(path, x_faces, y_faces, z_faces, cell_data, field)
        self.frames.append((float(time_s), path))
        atomic_write_text(self.pvd_path, self._pvd_text())
        return path

    def _pvd_text(self) -> str:
        """The PVD collection listing every frame, with paths relative to the PVD."""
        rows = "".join(
            f'    <DataSet timestep="{t!r}" group="" part="0" '
            f'file="{p.relative_to(self.directory).as_posix()}"/>\n'
            for t, p in self.frames
        )
        return (
            '<?xml version="1.0"?>\n'
            '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
            f"  <Collection>\n{rows}  </Collection>\n</VTKFile>\n"
        )


# --------------------------------------------------------------------------- CSV


def _csv_cell(value: float | int | str) -> str:
    """Format one CSV value: ints as ints, floats at full (round-trip) precision."""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


class CsvTable:
    """A CSV file with fixed columns, rewritten atomically whenever rows are added.

    Parameters
    ----------
    path
        Destination file; the header is written at construction.
    columns
        Column names, fixed for the life of the table.
    """

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self._lines = [self._render(self.columns)]
        self._hash = hashlib.sha256(self._lines[0].encode("utf-8"))
        atomic_write_text(self.path, self._lines[0])

    @classmethod
    def reopen(cls, path: Path, columns: Sequence[str], n_rows: int, sha256: str) -> CsvTable:
        """Continue a table written earlier (a resumed run), keeping its first rows.

        The file must start with the same header and ``n_rows`` rows whose text has
        the digest ``sha256`` (:meth:`digest` when they were written); rows after
        them are dropped and the file is rewritten.

        Parameters
        ----------
        path
            The existing file.
        columns
            Column names; must equal the file's header.
        n_rows
            Number of data rows to keep.
        sha256
            Expected digest of the header and the kept rows.

        Raises
        ------
        ValueError
            The file is missing, shorter, or its kept part differs.
        """
        self = cls.__new__(cls)
        self.path = Path(path)
        self.columns = list(columns)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"{self.path}: missing") from None
        lines = text.splitlines(keepends=True)
        header = self._render(self.columns)
        if not lines or lines[0] != header:
            raise ValueError(f"{self.path}: the header differs from the expected columns")
        if len(lines) < n_rows + 1:
            raise ValueError(f"{self.path}: {len(lines) - 1} rows, expected at least {n_rows}")
        self._lines = lines[: n_rows + 1]
        self._hash = hashlib.sha256("".join(self._lines).encode("utf-8"))
        if self.digest() != sha256:
            raise ValueError(
                f"{self.path}: the first {n_rows} rows changed since they were written"
            )
        atomic_write_text(self.path, "".join(self._lines))
        return self

    def digest(self) -> str:
        """SHA-256 (hex) of the table's text as written so far (header and rows)."""
        return self._hash.hexdigest()

    @staticmethod
    def _render(cells: Sequence[str]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(cells)
        return buf.getvalue()

    @property
    def n_rows(self) -> int:
        """Number of data rows written so far."""
        return len(self._lines) - 1

    def add_rows(self, rows: Iterable[Sequence[float | int | str]]) -> None:
        """Append rows and rewrite the file.

        Parameters
        ----------
        rows
            Each row has one value per column.

        Raises
        ------
        ValueError
            If a row has the wrong length (nothing is added then).
        """
        new = []
        for row in rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"{self.path.name}: row has {len(row)} values, expected {len(self.columns)}"
                )
            new.append(self._render([_csv_cell(v) for v in row]))
        self._lines.extend(new)
        for line in new:
            self._hash.update(line.encode("utf-8"))
        atomic_write_text(self.path, "".join(self._lines))
