"""Interface chemistry models: charge compensation, release, the interphase field."""

from __future__ import annotations

import numpy as np
import pytest

from cosinter.case import ArrheniusRateSpec, CompensationSpec
from cosinter.models.reactions import (
    AllenCahnInterphase,
    LayeredOxideCompensation,
    blocked_path,
    interpolation,
    mixed_principal,
    release_zone,
)
from cosinter.units import EV


def model(tm_capacity: float = 3000.0) -> LayeredOxideCompensation:
    spec = CompensationSpec(
        model="layered_oxide",
        tm_capacity=tm_capacity,
        cation_charges={"Ti": 1.0, "La": 2.0},
        oxygen_sites=98540.0,
        release=ArrheniusRateSpec(prefactor=1e13, Ea=2.94 * EV),
        release_depth=2e-9,
        degradation=0.002,
    )
    return LayeredOxideCompensation.from_spec(spec, li_initial=48290.0)


def test_deficit_is_taken_by_tm_then_cations_then_vacancies() -> None:
    m = model()
    volumes = np.ones(4)
    li = np.full(4, 48290.0 - 7000.0)  # 7 mol/L lost
    cations = {"Ti": np.full(4, 500.0), "La": np.full(4, 250.0)}
    vo = np.full(4, 100.0)
    # 7000 - 3000 (TM) - 500 (Ti) - 2 x 250 (La) - 2 x 100 (V_O)
    assert m.uncompensated(li, cations, vo, volumes) == pytest.approx(2800.0)
    assert m.tm_holes(li, cations, volumes) == pytest.approx(3000.0)  # capacity full
    assert m.uncompensated(np.full(4, 48290.0), {}, np.zeros(4), volumes) == -3000.0


@pytest.mark.parametrize("dt", [1e-3, 1.0, 1e3, 1e9])
def test_release_step_is_backward_euler_and_never_overshoots(dt: float) -> None:
    m = model()
    T, phi, u0 = 973.15, 0.2, 4000.0
    formed, u_end = m.release_step(u0, phi, T, dt)
    a = 0.5 * m.rate_constant(T) * phi * dt
    # backward Euler of d<vo>/dt = a/dt (u0 - 2 <vo>) from <vo> = 0: exact balance
    assert formed == pytest.approx(a * u_end)
    assert u_end == pytest.approx(u0 - 2.0 * formed)
    assert 0.0 < formed <= u0 / 2.0 and u_end >= 0.0
    assert m.release_step(-1.0, phi, T, dt) == (0.0, -1.0)


def test_release_onset_temperature() -> None:
    """k = 1e-4 1/s at 600 degC (the calibration), a decade per ~40 K around it."""
    m = model()
    assert m.rate_constant(873.15) == pytest.approx(1e-4, rel=0.1)
    assert m.rate_constant(773.15) < 1e-6 < 1e-3 < m.rate_constant(973.15)


def test_degradation_factor() -> None:
    m = model()
    assert m.li_factor(np.array([0.0]))[0] == 1.0
    assert m.li_factor(np.array([0.002 * 98540.0]))[0] == pytest.approx(np.exp(-1.0))


def _interphase() -> AllenCahnInterphase:
    return AllenCahnInterphase(
        width=1e-9, prefactor=1e10, energy=1.6 * EV, cation_fraction=0.1, li_depletion=0.1
    )


def test_interphase_is_stable_and_nucleates_above_the_spinodal() -> None:
    ac = _interphase()
    eta = np.linspace(0.0, 1.0, 20001)
    for d in (0.0, 0.5, 2.0):
        assert ac.force(np.array([1.0]), np.array([d]))[0] == 0.0  # eta = 1 is a state
    below = ac.force(eta, np.full_like(eta, 0.99))
    above = ac.force(eta, np.full_like(eta, 1.01))
    assert below[0] > 0 and np.any(below[1:8000] < 0)  # stops at a small root (< 0.4)
    assert np.all(above[:-1] > 0)  # runs to 1: no seed needed
    assert ac.force(np.array([0.0]), np.array([0.0]))[0] == 0.0  # no cations: stays 0


@pytest.mark.parametrize("d", [0.2, 0.5, 1.0, 3.0])
def test_interphase_energy_difference(d: float) -> None:
    """f(0) - f(1) = integral of the force = s d/8 - b: eta = 0 lower below 8b/s."""
    ac = _interphase()
    eta = np.linspace(0.0, 1.0, 200001)
    work = np.trapezoid(ac.force(eta, np.full_like(eta, d)), eta)
    assert work == pytest.approx(ac.TILT * d / 8.0 - ac.COST, abs=1e-9)
    assert pytest.approx(1.4449, abs=1e-4) == ac.TILT  # spinodal at d = 1


def test_force_slope_is_the_derivative() -> None:
    ac = _interphase()
    eta = np.linspace(0.01, 0.99, 50)
    d = np.full_like(eta, 0.7)
    h = 1e-6
    numeric = (ac.force(eta + h, d) - ac.force(eta - h, d)) / (2 * h)
    assert ac.force_slope(eta, d) == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_drive_counts_cations_and_li_loss() -> None:
    ac = _interphase()
    assert ac.drive(np.array([0.1]), 0.0)[0] == pytest.approx(1.0)
    assert ac.drive(np.array([0.1]), 0.1)[0] == pytest.approx(2.0)
    assert ac.drive(np.array([0.0]), 0.5)[0] == 0.0  # Li loss alone makes no interphase


def test_interpolation_and_mixing() -> None:
    assert interpolation(np.array([0.0, 0.5, 1.0])) == pytest.approx([0.0, 0.5, 1.0])
    D0 = np.array([[1e-8, 1e-8, 1e-12]] * 3)
    Ea = np.zeros((3, 3))
    mixed = mixed_principal(D0, Ea, np.full(3, 0.0), np.zeros(3), np.array([0.0, 0.5, 1.0]), 300.0)
    assert mixed[0] == pytest.approx(D0[0])
    assert mixed[1] == pytest.approx(0.5 * D0[1])
    assert np.all(mixed[2] == 0.0)  # a blocking interphase blocks


def _line(n: int, h: float = 1e-9) -> np.ndarray:
    centres = np.zeros((n, 3))
    centres[:, 0] = (np.arange(n) + 0.5) * h
    return centres


def test_release_zone_takes_the_larger_uptake_near_two_exits() -> None:
    centres = _line(10)
    cells = np.arange(10)
    zone, uptake, paths = release_zone(centres, cells, [(0.0, 1.0), (10e-9, 0.05)], 2e-9)
    assert list(zone) == [0, 1, 8, 9]
    assert list(uptake) == [1.0, 1.0, 0.05, 0.05]
    # each cell escapes through the cells between it and its exit
    assert [sorted(set(p)) for p in paths.tolist()] == [[0], [0, 1], [8, 9], [9]]
    assert len(release_zone(centres, cells, [], 2e-9)[0]) == 0


def test_release_is_blocked_by_the_interphase_on_the_way_out() -> None:
    """A cell behind a formed interphase cannot release oxygen, whatever its own eta."""
    centres = _line(6)
    zone, _, paths = release_zone(centres, np.arange(6), [(6e-9, 1.0)], 3e-9)
    assert list(zone) == [3, 4, 5]
    eta = np.array([0, 0, 0, 0.1, 0.2, 0.95])
    assert blocked_path(eta, paths) == pytest.approx([0.95, 0.95, 0.95])
    eta = np.array([0, 0, 0, 0.9, 0.2, 0.1])
    assert blocked_path(eta, paths) == pytest.approx([0.9, 0.2, 0.1])


def test_release_paths_follow_rows_in_2d() -> None:
    """Two rows: a cell's path stays in its own row."""
    x = (np.arange(4) + 0.5) * 1e-9
    centres = np.array([[xi, y, 0.0] for y in (0.5e-9, 1.5e-9) for xi in x])
    zone, _, paths = release_zone(centres, np.arange(8), [(4e-9, 1.0)], 2e-9)
    assert list(zone) == [2, 3, 6, 7]
    assert [sorted(set(p)) for p in paths.tolist()] == [[2, 3], [3], [6, 7], [7]]
