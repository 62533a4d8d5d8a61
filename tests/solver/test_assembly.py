"""The direct assembly against FiPy's terms: the same matrices, the same steps."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sparse

from cosinter.case import load_case, validate_case
from cosinter.solver import equations
from cosinter.solver.assembly import BlockAssembler, FaceMesh, Slot, SparsePattern, face_entries
from cosinter.solver.equations import TransportSystem
from cosinter.solver.simulation import Simulation

CASES = Path(__file__).resolve().parents[2] / "cases"


def test_sparse_pattern_sums_duplicates_like_coo() -> None:
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 7, 40), rng.integers(0, 5, 40)
    values = rng.normal(size=40)
    pattern = SparsePattern(rows, cols, (7, 5))
    expected = sparse.coo_matrix((values, (rows, cols)), shape=(7, 5)).toarray()
    assert np.array_equal(pattern.matrix(values).toarray(), expected)
    assert pattern.matrix(2 * values).toarray() == pytest.approx(2 * expected)


def test_face_slot_is_the_two_point_flux() -> None:
    """Two cells, one face: the outflow g (u1 - u2) + s (u1 + u2)/2 leaves 1, enters 2."""
    mesh = FaceMesh.of(
        np.array([0, 0, 1]),
        np.array([0, 1, 1]),
        np.array([False, True, False]),
        np.full(3, 0.5),
        np.full(3, 0.5),
        np.ones(3),
        np.ones(2),
    )
    assembler = BlockAssembler(mesh, 1, [Slot("faces", 0, 0)])
    g, s = 3.0, 0.8
    matrix = assembler.matrix([face_entries(np.array([g]), np.array([s]))]).toarray()
    u = np.array([2.0, 5.0])
    outflow = g * (u[0] - u[1]) + 0.5 * s * (u[0] + u[1])
    assert matrix @ u == pytest.approx([outflow, -outflow])
    # exterior faces carry an explicit flux outward, the interior one from 0 to 1
    assert mesh.outflow(np.array([1.0, 2.0, 4.0])) == pytest.approx([1.0 + 2.0, -2.0 + 4.0])


def reference_system(raw: dict[str, Any]) -> TransportSystem:
    """The case's system assembled by FiPy's terms."""
    return Simulation(validate_case(raw), raw).transport_system(reference_assembly=True)


def compare_every_solve(
    raw: dict[str, Any], steps: list[tuple[float, float]], monkeypatch: pytest.MonkeyPatch
) -> int:
    """Step FiPy's system; at every solve, assemble the same iterate directly and compare.

    Returns the number of solves compared. Rows are divided by their diagonal
    (FiPy's rows carry the opposite sign); entries are compared relative to the
    row's largest, right-hand sides relative to the largest of the system.
    """
    system = reference_system(raw)
    by_id = {id(state.var): state for state in system.species.values()}
    solve = equations.conserving_solve
    compared = 0
    now = {"dt": 0.0}

    def spy(L: Any, x: np.ndarray, b: np.ndarray, *rest: Any) -> np.ndarray:
        nonlocal compared
        variables = getattr(system.solver.var, "vars", [system.solver.var])
        if variables[0] is system.eta:
            assert system._eta_faces is not None and system._eta_implicit is not None
            assert system._eta_explicit is not None
            ours, rhs = system.assemble_interphase(
                now["dt"],
                np.asarray(system._eta_faces.value),
                np.asarray(system._eta_implicit.value),
                np.asarray(system._eta_explicit.value),
            )
        elif id(variables[0]) in by_id:
            states = [by_id[id(v)] for v in variables if id(v) in by_id]
            ours, rhs, current, _ = system.assemble(states, now["dt"], {})
            assert current == pytest.approx(x, rel=0, abs=0)
        else:  # the potential of the initial concentrations (set-up, not a step)
            return solve(L, x, b, *rest)
        A, B = normalised(ours, rhs)
        C, D = normalised(sparse.csr_matrix(L), b)
        row_scale = np.max(np.abs(C), axis=1, keepdims=True)
        assert np.max(np.abs(A - C) / row_scale) < 1e-12
        assert np.max(np.abs(B - D)) <= 1e-12 * max(float(np.max(np.abs(D))), 1e-300)
        compared += 1
        return solve(L, x, b, *rest)

    monkeypatch.setattr(equations, "conserving_solve", spy)
    for dt, T in steps:
        now["dt"] = dt
        system.step(dt, T, 30, 1e-6)
        system.accept(dt)
    return compared


def normalised(matrix: sparse.csr_matrix, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows divided by their diagonal."""
    dense = matrix.toarray()
    diagonal = np.diag(dense).copy()
    assert np.all(diagonal != 0)
    return dense / diagonal[:, None], rhs / diagonal


def case(name: str, overrides: list[str]) -> dict[str, Any]:
    _, raw = load_case(CASES / name, overrides)
    return raw


def grains_2d() -> dict[str, Any]:
    """2D periodic random NCM111 grains | LLTO with Li and Ti: rotated tensors."""
    return {
        "case": {"name": "grains"},
        "mesh": {
            "dimension": 2,
            "cell_size": "1 nm",
            "width": "8 nm",
            "grains": {"layer": 0, "count": 4, "seed": 2},
        },
        "layers": [
            {"material": "NCM111", "thickness": "8 nm", "orientation": "random"},
            {"material": "LLTO", "thickness": "8 nm"},
        ],
        "species": {"Li": {}, "Ti": {}},
        "temperature": {"initial": "500 degC", "steps": [{"hold": "1 min"}]},
    }


CONFIGURATIONS = {
    # Li, Ti, La, VO with oxygen release, the interphase field, partition jumps
    "ncm104_chemistry": (
        lambda: case("lee2024_ncm104.toml", ["mesh.cell_size=2 nm"]),
        [(1.0, 773.15), (30.0, 823.15), (60.0, 923.15)],
    ),
    # charged Li and Poisson in one matrix, fixed ends and potentials, a sheet charge
    "grain_boundary_poisson": (
        lambda: case("llto_grain_boundary.toml", []),
        [(1e-15, 298.15), (1e-13, 298.15), (1e-12, 298.15)],
    ),
    # electrostatics across NCM | LLTO (drift on every face, coupled Newton)
    "space_charge": (
        lambda: case("ncm_llto_space_charge.toml", ["mesh.cell_size=1 nm"]),
        [(0.1, 573.15), (10.0, 573.15)],
    ),
    # the cross terms' implicit matrix (periodic seam, material interfaces)
    "rotated_grains": (grains_2d, [(1.0, 773.15), (20.0, 773.15)]),
}


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_direct_assembly_is_fipys(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, steps = CONFIGURATIONS[name]
    assert compare_every_solve(make(), steps, monkeypatch) >= 2 * len(steps)


@pytest.mark.parametrize("name", ["ncm104_1d", "rotated_grains_2d"])
def test_direct_and_fipy_steps_agree(name: str) -> None:
    """Whole steps on both paths: the same states to round-off (another LU ordering).

    In 2D the direct path's variables sit on a container mesh (no geometry): a
    geometry read from it would show here.
    """
    if name == "ncm104_1d":
        raw = case("lee2024_ncm104.toml", ["mesh.cell_size=2 nm"])
    else:
        raw = grains_2d()
    direct = Simulation(validate_case(raw), raw).transport_system()
    reference = reference_system(raw)
    for system in (direct, reference):
        for dt, T in [(1.0, 773.15), (30.0, 823.15), (60.0, 923.15)]:
            assert system.step(dt, T, 30, 1e-6).converged
            system.accept(dt)
    assert direct.anisotropic is (name != "ncm104_1d")
    for key, value in direct.state().items():
        other = reference.state()[key]
        scale = max(float(np.max(np.abs(other))), 1e-300)
        # measured 3.4e-11 (Li): the nearly singular solves amplify round-off
        assert np.max(np.abs(value - other)) / scale < 1e-9, key


def test_direct_assembly_frees_the_stack_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The direct path reads the grid once; its variables live on a container mesh.

    The stack's FiPy grid held ~1 GiB at 10^6 cells and sits in reference cycles: it
    must be gone when the system is built, not at some later full collection.
    """
    made: list[weakref.ref[Any]] = []
    original = equations.build_mesh

    def tracking(geometry: Any) -> Any:
        grid = original(geometry)
        made.append(weakref.ref(grid))
        return grid

    monkeypatch.setattr(equations, "build_mesh", tracking)
    raw = grains_2d()
    direct = Simulation(validate_case(raw), raw).transport_system()
    assert len(made) == 1 and made[0]() is None
    assert direct.mesh.numberOfCells == direct.geometry.n_cells
    assert direct.anisotropic  # the cross stencil was read from the grid too
    reference = reference_system(raw)
    assert made[1]() is reference.mesh
