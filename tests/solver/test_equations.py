"""The solver's linear algebra: the bordered LU that holds inventories."""

from __future__ import annotations

from typing import Any

import fipy
import numpy as np
import pytest

from cosinter.solver.equations import _ConservingLU

CELLS, DX, D, DT = 400, 0.25e-9, 1e-9, 1e3  # dt D / dx^2 = 1.6e13: nearly singular


def one_step(solver: object, hold: bool, dt: float = DT) -> tuple[float, np.ndarray, float]:
    """One backward-Euler diffusion step, closed ends; returns drift, c, initial mean."""
    mesh = fipy.Grid1D(nx=CELLS, dx=DX)
    x = np.asarray(mesh.cellCenters[0].value)
    c = fipy.CellVariable(mesh=mesh, hasOld=True)
    c.setValue(np.where(x < 50e-9, 4.9e4, 1e4) * (1 + 0.1 * np.sin(x / 7e-9)))
    c.updateOld()
    volumes = np.asarray(mesh.cellVolumes)
    inventory = float(volumes @ np.asarray(c.value))
    if hold:
        assert isinstance(solver, _ConservingLU)
        solver.inventories = {id(c): (volumes, np.array(c.old.value))}
    (fipy.TransientTerm() == fipy.DiffusionTerm(coeff=D)).solve(var=c, dt=dt, solver=solver)
    value = np.array(c.value)
    return abs(float(volumes @ value) - inventory) / inventory, value, inventory / volumes.sum()


def test_plain_lu_loses_inventory_at_large_dt() -> None:
    """Why the bordered solve exists: SuperLU's round-off lands in the inventory."""
    drift, _, _ = one_step(fipy.LinearLUSolver(tolerance=1e-12, iterations=1), hold=False)
    assert drift > 1e-5, drift  # [1.9e-3]


def test_bordered_lu_holds_inventory_and_solves_the_step() -> None:
    drift, value, mean = one_step(_ConservingLU(), hold=True)
    assert drift < 1e-14, drift  # [0.0]
    # dt is 1e8 times L^2/D: the exact step is flat at the initial mean to ~1e-8
    assert np.max(np.abs(value - mean)) / mean < 1e-7  # [8.6e-10]


def test_bordered_lu_without_inventories_is_the_plain_solve() -> None:
    # a well-conditioned step (dt D/dx^2 = 16): FiPy's LU and ours (another column
    # ordering, no row scaling) agree to round-off; at DT they differ by the
    # round-off the border exists to remove
    dt = 1e-9
    _, plain, _ = one_step(fipy.LinearLUSolver(tolerance=1e-12, iterations=1), False, dt)
    _, ours, _ = one_step(_ConservingLU(), False, dt)
    assert ours == pytest.approx(plain, rel=1e-13)


class CountingLU:
    """SuperLU as a back end that counts its factorizations and closes."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0

    def __call__(self, matrix: Any, equilibrate: bool) -> Any:
        from cosinter.solver.equations import superlu

        lu = superlu(matrix, equilibrate)
        self.opened += 1
        outer = self

        class Tracked:
            def solve(self, rhs: np.ndarray) -> np.ndarray:
                if outer.fail:
                    raise RuntimeError("singular")
                return lu.solve(rhs)

            def close(self) -> None:
                outer.closed += 1

        return Tracked()

    fail = False


def test_a_factorization_back_end_is_used_and_always_closed() -> None:
    """What the PETSc back end relies on: every factorization is freed (collectively,
    on every MPI rank), also when the solve raises."""
    counting = CountingLU()
    drift, value, _ = one_step(_ConservingLU(factorize=counting), hold=True)
    _, reference, _ = one_step(_ConservingLU(), hold=True)
    assert counting.opened == counting.closed == 1
    assert drift < 1e-14
    assert np.array_equal(value, reference)  # the same LU, the same numbers
    counting.fail = True
    with pytest.raises(RuntimeError, match="singular"):
        one_step(_ConservingLU(factorize=counting), hold=True)
    assert counting.opened == counting.closed == 2


def test_assign_is_set_value() -> None:
    """The cheap setter: same values, dependent expressions and terms see the change."""
    from cosinter.solver.equations import assign, update_old

    mesh = fipy.Grid1D(nx=5, dx=1.0)
    var = fipy.CellVariable(mesh=mesh, value=1.0, hasOld=True)
    twice = 2 * var
    assert np.allclose(twice.value, 2.0)
    new = np.arange(5.0)
    assign(var, new)
    new[0] = 99.0  # a copy was taken
    assert np.array_equal(var.value, np.arange(5.0))
    assert np.array_equal(twice.value, 2 * np.arange(5.0))
    update_old(var)
    assign(var, np.zeros(5))
    assert np.array_equal(var.old.value, np.arange(5.0))
    # a term built on the variable solves from the assigned value
    (fipy.TransientTerm(var=var) == 0).solve(var=var, dt=1.0)
    assert np.array_equal(var.value, np.arange(5.0))
