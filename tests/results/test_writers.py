"""Tests of the atomic writers: VTU/PVD series (read back with pyvista), CSV, JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv

from cosinter.results.writers import (
    CsvTable,
    PvdSeries,
    atomic_path,
    atomic_write_text,
    write_json,
    write_vtu,
)

TIMES = [0.0, 12.5, 3600.000001]
TEMPS = [298.15, 573.15, 1273.15]
# non-uniform spacing so that a wrong cell ordering cannot go unnoticed
X = np.array([0.0, 1e-9, 3e-9, 6e-9, 10e-9])
Y = np.array([0.0, 2e-9, 5e-9])
Z = np.array([0.0, 4e-9, 5e-9])


def _centres(faces: np.ndarray) -> np.ndarray:
    return 0.5 * (faces[1:] + faces[:-1])


def _hidden_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob(".*")]


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_pvd_series_reads_back_with_pyvista(tmp_path: Path, dim: int) -> None:
    y = Y if dim >= 2 else None
    z = Z if dim == 3 else None
    axes = [X, Y, Z][:dim]
    # cell id = i + nx*(j + ny*k): meshgrid 'ij' raveled in Fortran order
    grids = np.meshgrid(*[_centres(a) for a in axes], indexing="ij")
    centres = [g.ravel(order="F") for g in grids]
    n_cells = centres[0].size
    material = np.arange(n_cells) % 3

    series = PvdSeries(tmp_path)
    for i, (t, T) in enumerate(zip(TIMES, TEMPS, strict=True)):
        data = {"xc": centres[0], "material": material, "Li": np.full(n_cells, float(i))}
        if dim >= 2:
            data["yc"] = centres[1]
        path = series.add_frame(t, T, X, y, z, data)
        assert path == tmp_path / "fields" / f"frame_{i:04d}.vtu"

    reader = pv.get_reader(tmp_path / "fields.pvd")
    assert reader.time_values == TIMES
    for i, (t, T) in enumerate(zip(TIMES, TEMPS, strict=True)):
        reader.set_active_time_point(i)
        blocks = reader.read()
        assert isinstance(blocks, pv.MultiBlock)
        mesh = blocks[0]
        assert isinstance(mesh, pv.UnstructuredGrid)
        assert mesh.n_cells == n_cells
        cc = mesh.cell_centers().points
        np.testing.assert_allclose(mesh.cell_data["xc"], cc[:, 0], rtol=1e-12, atol=1e-24)
        np.testing.assert_allclose(mesh.cell_data["xc"], centres[0], rtol=0, atol=0)
        if dim >= 2:
            np.testing.assert_allclose(mesh.cell_data["yc"], cc[:, 1], rtol=1e-12, atol=1e-24)
        if dim == 3:
            np.testing.assert_allclose(cc[:, 2], centres[2], rtol=1e-12, atol=1e-24)
        assert mesh.cell_data["Li"].dtype == np.float64
        np.testing.assert_array_equal(mesh.cell_data["Li"], i)
        assert np.issubdtype(mesh.cell_data["material"].dtype, np.integer)
        np.testing.assert_array_equal(mesh.cell_data["material"], material)
        assert mesh.field_data["time_s"][0] == t
        assert mesh.field_data["T_K"][0] == T
        # positive sizes = valid VTK node order (scaled to nm: VTK zeroes areas below ~1e-12)
        sizes = mesh.scale(1e9, inplace=False).compute_cell_sizes()
        assert np.all(sizes[{1: "Length", 2: "Area", 3: "Volume"}[dim]] > 0)
    assert _hidden_files(tmp_path) == []


def test_pvd_timestep_full_precision_and_clear(tmp_path: Path) -> None:
    series = PvdSeries(tmp_path)
    t = 0.1 + 0.2  # 0.30000000000000004
    series.add_frame(t, 300.0, X, None, None, {"a": np.zeros(4)})
    assert f'timestep="{t!r}"' in (tmp_path / "fields.pvd").read_text()
    (tmp_path / "fields" / ".frame_0001.deadbeef.vtu").write_text("partial")
    series.clear()
    assert not (tmp_path / "fields.pvd").exists()
    assert list((tmp_path / "fields").iterdir()) == []
    assert series.add_frame(0.0, 300.0, X, None, None, {}).name == "frame_0000.vtu"


def test_write_vtu_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cell data"):
        write_vtu(tmp_path / "a.vtu", X, None, None, {"a": np.zeros(3)}, {})
    with pytest.raises(ValueError, match="increasing"):
        write_vtu(tmp_path / "a.vtu", X[::-1], None, None, {}, {})
    with pytest.raises(ValueError, match="z_faces"):
        write_vtu(tmp_path / "a.vtu", X, None, Z, {}, {})
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.vtu"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".vtu"
        tmp.write_text("half-written")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_csv_table_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    table = CsvTable(path, ["frame", "time_s", "T_K", "depth_Li"])
    assert path.read_text() == "frame,time_s,T_K,depth_Li\n"
    rows = [(0, 0.0, 298.15, 1.234567890123e-9), (1, np.float64(0.1 + 0.2), 300.0, float("nan"))]
    table.add_rows(rows[:1])
    table.add_rows(iter(rows[1:]))
    with pytest.raises(ValueError, match="expected 4"):
        table.add_rows([(2, 1.0, 300.0)])
    assert table.n_rows == 2

    arr = np.genfromtxt(path, delimiter=",", names=True)
    np.testing.assert_array_equal(arr["time_s"], [0.0, 0.1 + 0.2])  # exact round trip
    assert arr["depth_Li"][0] == 1.234567890123e-9 and np.isnan(arr["depth_Li"][1])
    with path.open(newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[1][0] == "0" and lines[2][0] == "1"  # ints stay ints
    assert len(lines) == 3 and _hidden_files(tmp_path) == []


def test_write_json_converts_numpy(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_json(path, {"z": np.float64(1.5), "a": np.arange(3), "n": np.int64(7), "p": tmp_path})
    text = path.read_text()
    assert json.loads(text) == {"z": 1.5, "a": [0, 1, 2], "n": 7, "p": str(tmp_path)}
    assert text.index('"z"') < text.index('"a"')  # key order kept
    assert '\n  "z"' in text
