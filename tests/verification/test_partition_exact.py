r"""Interfaces against exact solutions: lattice-gas equilibrium, composite media, conservation.

Two semi-infinite media with partition c2 = K c1 (Crank, composite media): with
:math:`s = \sqrt{D_1} + K\sqrt{D_2}`,
:math:`c_1 = C_0[1 - (K\sqrt{D_2}/s)\,\mathrm{erfc}(|x|/2\sqrt{D_1 t})]`,
:math:`c_2 = C_0 (K\sqrt{D_1}/s)\,\mathrm{erfc}(x/2\sqrt{D_2 t})`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc
from verify_support import base_case, solve

from cosinter.case import validate_case
from cosinter.models.transport import partition_equilibrium
from cosinter.solver.equations import TransportSystem
from cosinter.solver.simulation import Simulation
from cosinter.solver.stepping import StepControl, run
from cosinter.units import BOLTZMANN, EV

T_HOLD = 700.0


def lattice_gas_case(hold: str, cell: str = "1 nm", rtol: float = 1e-4) -> dict:
    return base_case(
        mesh={"dimension": 1, "cell_size": cell},
        species={"Li": {"charge": 1}},
        materials={
            "C": {
                "species": {
                    "Li": {
                        "initial": "48 mol/L",
                        "sites": "49.3 mol/L",
                        "mu0": "0 eV",
                        "D0": "1e-16 m^2/s",
                        "Ea": "0 eV",
                    }
                }
            },
            "E": {
                "species": {
                    "Li": {
                        "initial": "10 mol/L",
                        "sites": "20 mol/L",
                        "mu0": "0.15 eV",
                        "D0": "1e-15 m^2/s",
                        "Ea": "0 eV",
                    }
                }
            },
        },
        layers=[{"material": "C", "thickness": "20 nm"}, {"material": "E", "thickness": "30 nm"}],
        temperature={"initial": T_HOLD, "steps": [{"hold": hold}]},
        solver={"rtol": rtol},
    )


def test_lattice_gas_partition_equilibrium() -> None:
    """Long hold: Fermi-Dirac partition logit(theta_E) = logit(theta_C) - dmu0/kT, exactly."""
    # The floor is solve round-off (~1e-10 in theta): rtol 1e-4 and 1e-6 both land
    # there (measured 9e-11 and 4e-10), while any error in the partition law itself
    # (dilute law, lagged vacancy factors, mean face theta) is >= 1e-3.
    sim, system, _ = solve(lattice_gas_case("1e4 s"))
    c = system.values()["Li"]
    layer = sim.geometry.cell_layer
    theta_c = c[layer == 0] / 49300.0
    theta_e = c[layer == 1] / 20000.0
    # each side uniform (equilibrated)
    assert np.ptp(theta_c) < 1e-9 and np.ptp(theta_e) < 1e-9
    expected = partition_equilibrium(float(theta_c.mean()), 0.0, 0.15 * EV, T_HOLD)
    assert abs(theta_e.mean() - expected) < 1e-9, (theta_e.mean(), expected)
    # Li moved from the fuller side (theta 0.97) to the emptier one despite the higher mu0
    assert theta_e.mean() > 0.5
    # and the dilute answer would be very different: the lattice gas matters
    dilute_ratio = np.exp(-0.15 * EV / (BOLTZMANN * T_HOLD)) * 20000.0 / 49300.0
    assert abs(theta_e.mean() / theta_c.mean() - dilute_ratio) > 0.1


def test_conservation_to_round_off() -> None:
    sim, system, _ = solve(lattice_gas_case("1e4 s"))
    c = system.values()["Li"]
    total = float(np.dot(c, sim.geometry.cell_volumes))
    initial = float(np.dot(sim.props.species["Li"].initial, sim.geometry.cell_volumes))
    assert abs(total - initial) / initial < 1e-10
    assert np.min(c) >= 0.0


def composite_case(cell: str, t_end: str) -> dict:
    """Dilute species, partition K = exp(-dmu0/kT) = 0.5 at 700 K, medium 2 initially empty."""
    dmu0 = -BOLTZMANN * T_HOLD * np.log(0.5)
    return base_case(
        mesh={"dimension": 1, "cell_size": cell},
        materials={
            "M1": {"species": {"X": {"initial": "1 mol/L", "D0": "1e-18 m^2/s", "Ea": 0}}},
            "M2": {"species": {"X": {"initial": 0, "mu0": dmu0, "D0": "4e-18 m^2/s", "Ea": 0}}},
        },
        layers=[
            {"material": "M1", "thickness": "200 nm"},
            {"material": "M2", "thickness": "300 nm"},
        ],
        temperature={"initial": T_HOLD, "steps": [{"hold": t_end}]},
        solver={"rtol": 1e-4},
    )


def composite_error(cell: float) -> float:
    sim, system, state = solve(composite_case(f"{cell} nm", "200 s"))
    x = sim.geometry.cell_x - 200e-9
    D1, D2, K, C0 = 1e-18, 4e-18, 0.5, 1000.0
    s = np.sqrt(D1) + K * np.sqrt(D2)
    t = state.t
    exact = np.where(
        x < 0,
        C0 * (1 - K * np.sqrt(D2) / s * erfc(np.abs(x) / (2 * np.sqrt(D1 * t)))),
        C0 * K * np.sqrt(D1) / s * erfc(x / (2 * np.sqrt(D2 * t))),
    )
    return float(np.max(np.abs(system.values()["X"] - exact)) / C0)


def test_composite_media_transient() -> None:
    """Crank's two-media solution with partition and a diffusivity jump."""
    err = composite_error(1.0)
    assert err < 1e-3, err


def _fixed_step_profile(cell_nm: float) -> np.ndarray:
    """The composite problem with identical fixed steps at every resolution."""
    sim = Simulation(validate_case(composite_case(f"{cell_nm} nm", "200 s")))
    system = TransportSystem(sim.geometry, sim.props, {})
    fixed = StepControl(
        rtol=1e9, max_temperature_change=1e9, dt_initial=1.0, dt_min=1e-9, dt_max=1.0
    )
    run(system, sim.program, [], fixed)
    return system.values()["X"]


def test_composite_media_second_order_in_space() -> None:
    """Richardson on cell averages (same fixed steps): the jump face is second order."""
    profiles = [_fixed_step_profile(h) for h in (4.0, 2.0, 1.0, 0.5)]

    def coarsen(fine: np.ndarray) -> np.ndarray:
        return 0.5 * (fine[0::2] + fine[1::2])  # interfaces fall on faces at every level

    diffs = [np.max(np.abs(profiles[k] - coarsen(profiles[k + 1]))) for k in range(3)]
    orders = np.log2(np.array(diffs[:-1]) / np.array(diffs[1:]))
    assert np.all(orders > 1.8), (diffs, orders)
