"""Polycrystalline layers and fast-diffusion channels, through the whole pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvista as pv

from cosinter.case import validate_case
from cosinter.cli import main
from cosinter.errors import CaseError
from cosinter.meshes.microstructure import random_rotations
from cosinter.meshes.stack import StackGeometry
from cosinter.solver.equations import build_mesh
from cosinter.solver.simulation import Simulation


def stack_2d(width: str = "20 nm", **mesh: Any) -> dict[str, Any]:
    """NCM111 (003) (20 nm) | LLTO (20 nm) in 2D, 1 nm cells (40 x 20 cells)."""
    return {
        "case": {"name": "microstructure"},
        "mesh": {"dimension": 2, "cell_size": "1 nm", "width": width, **mesh},
        "layers": [
            {"material": "NCM111", "thickness": "20 nm", "orientation": {"plane": [0, 0, 3]}},
            {"material": "LLTO", "thickness": "20 nm"},
        ],
        "species": {"Li": {"charge": 1}},
        "temperature": {
            "initial": "25 degC",
            "steps": [{"ramp": "10 K/min", "to": "120 degC"}, {"hold": "5 min"}],
        },
    }


def last_frame(directory: Path) -> pv.DataSet:
    reader = pv.get_reader(str(directory / "fields.pvd"))
    reader.set_active_time_point(len(reader.time_values) - 1)
    return reader.read()[0]


def test_polycrystal_run_writes_the_grains(tmp_path: Path) -> None:
    raw = stack_2d(grains={"layer": 0, "count": 8, "seed": 1})
    raw["layers"][0]["orientation"] = "random"
    raw["temperature"] = {"initial": "300 degC", "steps": [{"hold": "1 min"}]}
    raw["solver"] = {"rtol": 1e-2}  # rotated tensors are swept every step: keep it short
    sim = Simulation(validate_case(raw), raw)
    grain, layer = sim.props.grain, sim.props.layer
    assert set(np.unique(grain[layer == 0])) == set(range(8))
    assert np.all(grain[layer == 1] == -1)
    # each grain cell has its grain's rotation, the LLTO cells the identity
    expected = random_rotations(8, 1)
    assert np.allclose(sim.props.rotations[layer == 0], expected[grain[layer == 0]])
    assert np.allclose(sim.props.rotations[layer == 1], np.eye(3))

    result = sim.run(tmp_path, progress=False)
    assert result.frames == 2
    mesh = last_frame(tmp_path)
    assert "grain" in mesh.cell_data
    written = np.asarray(mesh.cell_data["grain"])
    assert written.dtype == np.int32
    assert np.array_equal(written, grain)
    m = result.metrics
    # measured 1.37e-4 mol/m^2 (the random grains include open ones: Li reaches the
    # partition within the minute at 300 degC)
    assert m["crossed_Li_i0"] > 0
    total = m["inventory_Li_layer0"] + m["inventory_Li_layer1"]
    assert total == pytest.approx(20e-9 * (48290 + 10000), rel=1e-6)


def test_channels_open_a_closed_interface(tmp_path: Path) -> None:
    """Line defects through NCM111 (003) carry Li across the closed interface."""
    channels = {"layer": 0, "spacing": "10 nm", "width": "1 nm", "D_factor": 1e4}
    # the closed c direction carries Li from ~400 degC (NCM111 library, issue 4)
    program = {"initial": "350 degC", "steps": [{"hold": "5 min"}]}
    plain_raw = stack_2d(width="10 nm")
    plain_raw["temperature"] = program
    plain = Simulation(validate_case(plain_raw), plain_raw)
    fast_raw = stack_2d(width="10 nm", channels=channels)
    fast_raw["temperature"] = program
    fast = Simulation(validate_case(fast_raw), fast_raw)
    # the channel line at y = 5 nm lies on a cell face: the cells on both sides (4-6 nm)
    d0_plain, d0_fast = plain.props.species["Li"].D0, fast.props.species["Li"].D0
    in_channel = ~np.isclose(d0_fast[:, 2], d0_plain[:, 2], atol=0)
    y = fast.geometry.cell_centres[:, 1]
    assert np.allclose(np.unique(np.round(y[in_channel] * 1e9, 6)), [4.5, 5.5])
    assert np.all(fast.props.layer[in_channel] == 0)
    assert np.allclose(d0_fast[in_channel], 1e4 * d0_plain[in_channel])

    closed = plain.run(tmp_path / "plain", progress=False).metrics["crossed_Li_i0"]
    opened = fast.run(tmp_path / "channels", progress=False).metrics["crossed_Li_i0"]
    # 5 min at 350 degC: measured 3.05e-5 mol/m^2 without and 1.366e-4 mol/m^2 with
    # channels (4.5x; the latter is the partition equilibrium: 20 % of the NCM columns
    # carry D_c x 1e4)
    assert opened > 3 * closed > 0, (opened, closed)
    assert "grain" not in last_frame(tmp_path / "plain").cell_data


@pytest.mark.parametrize(
    ("channels", "key"),
    [
        ({"spacing": "4 nm", "width": "0.5 nm"}, "mesh.channels.width"),
        ({"spacing": "50 nm", "width": "2 nm"}, "mesh.channels.spacing"),
    ],
)
def test_channels_without_cells_are_refused(channels: dict[str, str], key: str) -> None:
    raw = stack_2d(channels={"layer": 0, "D_factor": 10, **channels})
    with pytest.raises(CaseError) as info:
        Simulation(validate_case(raw), raw)
    assert info.value.key == key


def test_listed_grain_orientations_and_check(tmp_path: Path, capsys: Any) -> None:
    raw = stack_2d(grains={"layer": 0, "count": 2, "seed": 5})
    raw["layers"][0]["orientation"] = [{"plane": [0, 0, 3]}, {"plane": [1, 0, 4]}]
    sim = Simulation(validate_case(raw), raw)
    rot = sim.props.rotations
    cx = rot[:, 0, 2]  # lab x component of the crystal c axis
    grain = sim.props.grain
    assert np.allclose(np.abs(cx[grain == 0]), 1.0)
    assert np.allclose(cx[grain == 1], np.cos(np.radians(55.1)), atol=2e-3)
    # bad indices in one entry of the list are reported at that entry
    raw["layers"][0]["orientation"][1] = {"plane": [1, 0, 4, 0]}
    with pytest.raises(CaseError) as info:
        Simulation(validate_case(raw), raw)
    assert info.value.key == "layers.0.orientation.1"

    case = tmp_path / "grains.toml"
    case.write_text(
        """
[case]
name = "grains"
[mesh]
dimension = 2
cell_size = "1 nm"
width = "10 nm"
grains = { layer = 0, count = 3, seed = 1 }
[[layers]]
material = "NCM111"
thickness = "10 nm"
orientation = "random"
[[layers]]
material = "LLTO"
thickness = "10 nm"
[species.Li]
[temperature]
steps = [{ hold = "1 s" }]
""",
        encoding="utf-8",
    )
    assert main(["check", str(case)]) == 0
    assert "random" in capsys.readouterr().out  # the orientation column


@pytest.mark.parametrize("dimension", [2, 3])
def test_cell_centres_match_the_fipy_mesh(dimension: int) -> None:
    g = StackGeometry(
        (3e-9, 2e-9), 1e-9, dimension=dimension, width=3e-9, lateral_cell_size=1e-9
    ).with_refinement(0.5e-9, 1e-9)
    centres = np.asarray(build_mesh(g).cellCenters).T
    assert np.allclose(centres, g.cell_centres, rtol=0, atol=1e-18)
