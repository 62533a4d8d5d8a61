r"""Fick's law against exact solutions: diffusion couple, Arrhenius ramp, 2D rotated tensor.

Crank, The Mathematics of Diffusion (2nd ed., 1975): the couple
:math:`c = \bar c - \frac{\Delta c}{2}\,\mathrm{erf}(x/2\sqrt{\tau})` with
:math:`\tau = \int_0^t D\,dt'` when D depends on time only.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import quad
from scipy.special import erf
from verify_support import base_case, observed_order, single_material_props, solve

from cosinter.meshes.stack import StackGeometry
from cosinter.models.thermal import Hold, TemperatureProgram
from cosinter.solver.equations import TransportSystem
from cosinter.solver.stepping import StepControl, run
from cosinter.units import BOLTZMANN, EV

D_ISO = 1e-18  # m^2/s at the hold temperature (Ea = 0)
HALF = 100e-9  # each half of the couple (m); sqrt(D t) = 10 nm << 100 nm


def couple_case(
    cell_size: float,
    rtol: float = 1e-6,
    steps: list | None = None,
    Ea: str = "0 eV",
    D0: float = D_ISO,
) -> dict:
    material = {"species": {"X": {"D0": D0, "Ea": Ea}}}
    return base_case(
        mesh={"dimension": 1, "cell_size": cell_size},
        materials={
            "A": {**material, "species": {"X": {"D0": D0, "Ea": Ea, "initial": "2 mol/L"}}},
            "B": {**material, "species": {"X": {"D0": D0, "Ea": Ea, "initial": "1 mol/L"}}},
        },
        layers=[
            {"material": "A", "thickness": HALF},
            {"material": "B", "thickness": HALF},
        ],
        temperature={"initial": "600 K", "steps": steps or [{"hold": "100 s"}]},
        solver={"rtol": rtol},
    )


def couple_error(cell_size: float, rtol: float = 1e-6) -> float:
    sim, system, state = solve(couple_case(cell_size, rtol))
    x = sim.geometry.cell_x - HALF
    exact = 1500.0 - 500.0 * erf(x / (2 * np.sqrt(D_ISO * state.t)))
    return float(np.max(np.abs(system.values()["X"] - exact)) / 1000.0)


def test_diffusion_couple_matches_erf() -> None:
    assert couple_error(1e-9, rtol=1e-4) < 3e-3


def _cosine_mode(
    n_cells: int, control: StepControl, t_end: float
) -> tuple[float, float, list[float]]:
    """Decay of c = 1 + cos(pi x / L) in a no-flux box; returns (amplitude, h, dt's).

    The cell-centred cosine is an exact eigenvector of the discrete operator, so
    space and time errors can be separated exactly.
    """
    L = 50e-9
    geometry = StackGeometry(thicknesses=(L,), cell_size=L / n_cells)
    x = geometry.cell_x
    c0 = 1.0 + np.cos(np.pi * x / L)
    props = single_material_props(c0, np.full(3, D_ISO))
    system = TransportSystem(geometry, props, {})
    steps: list[float] = []

    class Record:
        def on_start(self, state: object) -> None: ...
        def on_frame(self, state: object) -> None: ...
        def on_finish(self, state: object, error: object) -> None: ...
        def on_step(self, state: object) -> None:
            steps.append(state.dt)  # type: ignore[attr-defined]

    run(system, TemperatureProgram(600.0, [Hold(t_end)]), [], control, [Record()])
    c = system.values()["X"]
    amplitude = float(np.dot(c - 1.0, np.cos(np.pi * x / L)) / np.sum(np.cos(np.pi * x / L) ** 2))
    return amplitude, L / n_cells, steps


def test_spatial_order_is_two() -> None:
    """Fixed steps; backward Euler applied to the exact eigenvalue isolates the space error."""
    L, t_end = 50e-9, 200.0
    lam = D_ISO * (np.pi / L) ** 2  # continuous eigenvalue
    fixed = StepControl(
        rtol=1e9, max_temperature_change=1e9, dt_initial=10.0, dt_min=1e-9, dt_max=10.0
    )
    h, err = [], []
    for n_cells in (10, 20, 40, 80):
        amplitude, dx, steps = _cosine_mode(n_cells, fixed, t_end)
        exact_in_time = float(np.prod(1.0 / (1.0 + lam * np.array(steps))))
        h.append(dx)
        err.append(abs(amplitude - exact_in_time))
    order = observed_order(np.array(h), np.array(err))
    assert 1.95 < order < 2.05, (err, order)


def test_time_error_falls_with_rtol() -> None:
    """Adaptive steps against the semi-discrete exact exp(-lambda_h t): the time error only."""
    L, t_end, n_cells = 50e-9, 200.0, 40
    h = L / n_cells
    lam_h = 4 * D_ISO / h**2 * np.sin(np.pi * h / (2 * L)) ** 2
    errors = []
    for rtol in (1e-2, 1e-3, 1e-4):
        control = StepControl(rtol=rtol, max_temperature_change=10, dt_initial=1e-3, dt_min=1e-12)
        amplitude, _, _ = _cosine_mode(n_cells, control, t_end)
        errors.append(abs(amplitude - np.exp(-lam_h * t_end)))
    assert errors[0] > errors[1] > errors[2], errors
    # local error per step ~ rtol with a first-order method: global error ~ rtol^(1/2)
    slope = observed_order(np.array([1e-2, 1e-3, 1e-4]), np.array(errors))
    assert 0.4 < slope < 0.7, (errors, slope)


def test_arrhenius_ramp_uses_tau_integral() -> None:
    """D(T(t)) on a ramp: the couple depends on tau = int D dt only."""
    Ea = 0.5 * EV
    D0 = 1e-18 * np.exp(Ea / (BOLTZMANN * 700.0))  # D(700 K) = 1e-18
    steps = [{"ramp": "1 K/s", "to": "800 K"}]
    raw = couple_case(1e-9, rtol=1e-5, steps=steps, Ea="0.5 eV", D0=D0)
    raw["temperature"]["initial"] = "600 K"
    sim, system, state = solve(raw)
    tau, _ = quad(lambda t: D0 * np.exp(-Ea / (BOLTZMANN * (600.0 + t))), 0.0, state.t)
    x = sim.geometry.cell_x - HALF
    exact = 1500.0 - 500.0 * erf(x / (2 * np.sqrt(tau)))
    err = np.max(np.abs(system.values()["X"] - exact)) / 1000.0
    # a constant-D solution with D at the end or the start is far off: the test can fail
    wrong = 1500.0 - 500.0 * erf(x / (2 * np.sqrt(D0 * np.exp(-Ea / (BOLTZMANN * 800)) * state.t)))
    assert np.max(np.abs(wrong - exact)) / 1000.0 > 0.05
    assert err < 3e-3, err


def test_rotated_tensor_gaussian_2d() -> None:
    """A Gaussian spreads with covariance S0 + 2 D t for a rotated anisotropic D.

    The box (160 nm) stays > 4 sigma from the centre, so the walls do not truncate it.
    """
    L, h = 160e-9, 2.5e-9
    geometry = StackGeometry(
        thicknesses=(L,), cell_size=h, dimension=2, width=L, lateral_cell_size=h, periodic=False
    )
    xc = geometry.cell_x - L / 2
    yc = np.repeat((np.arange(geometry.n_lateral) + 0.5) * geometry.d_lateral, geometry.nx) - L / 2
    s0 = 8e-9
    c0 = np.exp(-(xc**2 + yc**2) / (2 * s0**2))
    angle = np.radians(30.0)
    R = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    principal = np.array([4e-18, 1e-18, 1e-18])
    props = single_material_props(c0, principal, R)
    system = TransportSystem(geometry, props, {})
    t_end = 40.0
    program = TemperatureProgram(600.0, [Hold(t_end)])
    control = StepControl(rtol=1e-3, max_temperature_change=10, dt_initial=1e-2, dt_min=1e-12)
    run(system, program, [], control)
    D = (R @ np.diag(principal) @ R.T)[:2, :2]
    S = s0**2 * np.eye(2) + 2 * D * t_end
    pts = np.stack([xc, yc])
    mass = 2 * np.pi * s0**2
    inv = np.linalg.inv(S)
    exact = (
        mass
        / (2 * np.pi * np.sqrt(np.linalg.det(S)))
        * np.exp(-0.5 * np.einsum("in,ij,jn->n", pts, inv, pts))
    )
    c = system.values()["X"]
    err = np.max(np.abs(c - exact)) / np.max(exact)
    # the isotropic (unrotated) answer differs by far more than the tolerance
    iso = np.diag(principal[:2])
    S_wrong = s0**2 * np.eye(2) + 2 * iso * t_end
    wrong = (
        mass
        / (2 * np.pi * np.sqrt(np.linalg.det(S_wrong)))
        * np.exp(-0.5 * np.einsum("in,ij,jn->n", pts, np.linalg.inv(S_wrong), pts))
    )
    assert np.max(np.abs(wrong - exact)) / np.max(exact) > 0.05
    assert err < 0.02, err
    # and the covariance measured from the numerical field
    w = c / c.sum()
    cov = np.einsum("n,in,jn->ij", w, pts, pts)
    assert np.allclose(cov, S, rtol=0.02), (cov, S)
