r"""Tests of cosinter.models.electrostatics: the exact-solution helpers themselves.

Numbers in brackets are what was measured; each assertion keeps a margin of about
2-3x over them (or is an identity checked to round-off).

Checks
------
* :func:`thermal_voltage` and :func:`debye_length` against values worked out by hand
  from the SI constants (1:1 electrolyte, eps_r 80, 0.1 mol/L, 298.15 K: 0.9711 nm;
  the textbook value for water, eps_r 78.5, is 0.96 nm), and their scaling with
  c, z, eps_r, T.
* :func:`gouy_chapman_potential`: phi0 at x = 0; small phi0 tends to the linearised
  :math:`\phi_0 e^{-x/\lambda_D}` with the leading deviation
  :math:`-(u_0^2/48)(1-e^{-2x/\lambda_D})`, :math:`u_0 = z e\phi_0/kT` [matched to
  0.025 u0^2 of itself]; for a large phi0 it solves Poisson–Boltzmann
  :math:`\phi'' = (2zFc/\varepsilon)\sinh(ze\phi/kT)` [finite differences, 8.6e-8].
* :func:`grahame_surface_charge`: small phi0 gives :math:`\varepsilon\phi_0/\lambda_D`
  with deviation :math:`u_0^2/24` [next term u0^2/80 of it]; for large phi0 it equals the wall field
  :math:`-\varepsilon\phi'(0)` of the Gouy–Chapman potential [1.5e-10] and minus the
  space charge per area in the electrolyte [quadrature, 8.9e-16].
* :func:`boltzmann_concentration`: exact values.
* :func:`mott_schottky_charge_width`: tends to :func:`mott_schottky_width` as
  :math:`\sqrt{1-(1-e^{-u_0})/u_0}` (large barriers), to :math:`u_0\lambda_1`
  (linear screening, :math:`\lambda_1` = debye_length(c/2)) for small ones, and equals
  the depleted charge of the Poisson–Boltzmann profile integrated numerically
  [2.2e-10]; :func:`mott_schottky_width` against a hand value.
* :func:`charge_density` and :attr:`PoissonSetup.has_reference`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from cosinter.models import electrostatics as es
from cosinter.units import FARADAY, VACUUM_PERMITTIVITY

# SI constants written out (exact since 2019, eps0 CODATA 2018) for the hand values
K_B, E_CHARGE, N_A, EPS0 = 1.380649e-23, 1.602176634e-19, 6.02214076e23, 8.8541878128e-12

T = 300.0
VT = es.thermal_voltage(T)


def test_thermal_voltage_by_hand() -> None:
    assert es.thermal_voltage(300.0) == pytest.approx(0.025851999786435543, rel=1e-15)
    assert es.thermal_voltage(300.0) == pytest.approx(K_B * 300.0 / E_CHARGE, rel=1e-15)


def test_debye_length_by_hand() -> None:
    # eps_r 80, 0.1 mol/L = 100 mol/m^3 of a 1:1 salt, 25 degC:
    # lambda^2 = 80 eps0 k T / (2 e^2 N_A c) = 9.4309e-19 m^2
    lam_sq = 80 * EPS0 * K_B * 298.15 / (2 * E_CHARGE**2 * N_A * 100.0)
    lam = es.debye_length(80.0, 298.15, 100.0)
    assert lam == pytest.approx(math.sqrt(lam_sq), rel=1e-14)
    assert lam == pytest.approx(0.97113e-9, rel=1e-5)
    # water (eps_r 78.5): the textbook 0.96 nm at 0.1 M
    assert es.debye_length(78.5, 298.15, 100.0) == pytest.approx(0.962e-9, rel=1e-3)
    # scaling: 1/sqrt(c), 1/z, sqrt(eps_r), sqrt(T)
    assert es.debye_length(80.0, 298.15, 400.0) == pytest.approx(lam / 2, rel=1e-14)
    assert es.debye_length(80.0, 298.15, 100.0, z=2) == pytest.approx(lam / 2, rel=1e-14)
    assert es.debye_length(20.0, 298.15, 100.0) == pytest.approx(lam / 2, rel=1e-14)
    assert es.debye_length(80.0, 4 * 298.15, 100.0) == pytest.approx(2 * lam, rel=1e-14)


def test_gouy_chapman_at_the_wall_and_odd_in_phi0() -> None:
    x = np.array([0.0, 1e-9, 5e-9])
    phi = es.gouy_chapman_potential(x, 0.1, 10.0, T, 1.0)
    assert phi[0] == pytest.approx(0.1, rel=1e-15)
    assert np.all(np.diff(phi) < 0) and np.all(phi > 0)
    assert np.array_equal(es.gouy_chapman_potential(x, -0.1, 10.0, T, 1.0), -phi)


@pytest.mark.parametrize("phi0", [1e-4, 2e-4, 1e-3])
def test_gouy_chapman_small_potential_is_linear_screening(phi0: float) -> None:
    lam = es.debye_length(10.0, T, 1.0)
    s = np.linspace(0.0, 10.0, 101)
    phi = es.gouy_chapman_potential(s * lam, phi0, 10.0, T, 1.0)
    linear = phi0 * np.exp(-s)
    u0 = phi0 / VT
    deviation = phi / linear - 1
    # bounded by its far-field value u0^2/48 [3.1e-7 .. 3.1e-5, approached from below]
    assert np.max(np.abs(deviation)) <= u0**2 / 48
    # the leading term: tanh/artanh to third order give -(u0^2/48)(1 - e^{-2s})
    leading = -(u0**2) / 48 * (1 - np.exp(-2 * s))
    inner = s > 0.1
    # what is left is the next order, [0.025 u0^2] relative
    assert np.max(np.abs(deviation[inner] / leading[inner] - 1)) < 0.075 * u0**2


@pytest.mark.parametrize(("phi0", "z"), [(0.2, 1), (0.1, 2), (-0.15, 1)])
def test_gouy_chapman_solves_poisson_boltzmann(phi0: float, z: int) -> None:
    """phi'' = (2 z F c / eps) sinh(z e phi / kT) for a z:z electrolyte."""
    eps_r, c = 10.0, 1.0
    lam = es.debye_length(eps_r, T, c, z)
    x = np.array([0.2, 0.5, 1.0, 2.0, 4.0]) * lam
    h = 1e-4 * lam  # truncation (h/l)^2/12 with the local length l ~ lambda/8.6 at 0.2 lambda
    phi = es.gouy_chapman_potential(x, phi0, eps_r, T, c, z)
    up = es.gouy_chapman_potential(x + h, phi0, eps_r, T, c, z)
    down = es.gouy_chapman_potential(x - h, phi0, eps_r, T, c, z)
    curvature = (up - 2 * phi + down) / h**2
    source = 2 * z * FARADAY * c / (eps_r * VACUUM_PERMITTIVITY) * np.sinh(z * phi / VT)
    assert np.max(np.abs(curvature / source - 1)) < 2.5e-7  # [8.6e-8, 5.2e-8 at -0.15 V]


@pytest.mark.parametrize("phi0", [1e-4, 1e-3])
def test_grahame_small_potential(phi0: float) -> None:
    eps = 10.0 * VACUUM_PERMITTIVITY
    lam = es.debye_length(10.0, T, 1.0)
    sigma = es.grahame_surface_charge(phi0, 10.0, T, 1.0)
    u0 = phi0 / VT
    # 2 sinh(u/2) / u = 1 + u^2/24 + u^4/1920: the rest is [u0^2/80] of the u^2 term
    assert sigma / (eps * phi0 / lam) - 1 == pytest.approx(u0**2 / 24, rel=u0**2 / 30)


@pytest.mark.parametrize(("phi0", "z"), [(0.2, 1), (-0.1, 1), (0.08, 2)])
def test_grahame_is_the_wall_field_and_the_screening_charge(phi0: float, z: int) -> None:
    eps_r, c = 10.0, 1.0
    eps = eps_r * VACUUM_PERMITTIVITY
    lam = es.debye_length(eps_r, T, c, z)
    sigma = es.grahame_surface_charge(phi0, eps_r, T, c, z)
    # the field at the wall, central difference (the formula extends to x < 0)
    h = 1e-6 * lam  # truncation and round-off both ~1e-10 here
    gc = es.gouy_chapman_potential(np.array([-h, h]), phi0, eps_r, T, c, z)
    wall_field = -eps * (gc[1] - gc[0]) / (2 * h)
    assert wall_field / sigma - 1 == pytest.approx(0, abs=5e-10)  # [<= 1.5e-10]

    # the screening charge: integral of F z c (e^{-z u} - e^{z u}) over the electrolyte
    def rho(x: float) -> float:
        p = float(es.gouy_chapman_potential(np.array(x), phi0, eps_r, T, c, z))
        return z * FARADAY * c * -2 * math.sinh(z * p / VT)

    charge, _ = quad(rho, 0.0, 60 * lam, points=[lam, 3 * lam], epsabs=0, epsrel=1e-13, limit=200)
    assert -charge / sigma - 1 == pytest.approx(0, abs=3e-15)  # [<= 8.9e-16]


def test_boltzmann_concentration_values() -> None:
    phi = np.array([0.0, VT * math.log(2.0), -VT])
    assert np.allclose(es.boltzmann_concentration(phi, 3.0, 1, T), [3.0, 1.5, 3 * math.e])
    assert np.allclose(es.boltzmann_concentration(phi, 3.0, -2, T), [3.0, 12.0, 3 * math.e**-2])


def test_mott_schottky_width_by_hand() -> None:
    # eps_r 10, 1 V, 1 mol/m^3: w^2 = 2 * 10 eps0 * 1 V / (e N_A * 1 mol/m^3)
    w = math.sqrt(2 * 10 * EPS0 * 1.0 / (E_CHARGE * N_A * 1.0))
    assert es.mott_schottky_width(10.0, 1.0, 1.0) == pytest.approx(w, rel=1e-14)
    assert w == pytest.approx(42.84e-9, rel=1e-4)
    # |barrier|, and z^-1/2
    assert es.mott_schottky_width(10.0, -1.0, 1.0) == es.mott_schottky_width(10.0, 1.0, 1.0)
    assert es.mott_schottky_width(10.0, 1.0, 1.0, z=2) == pytest.approx(w / math.sqrt(2))


@pytest.mark.parametrize("u0", [10.0, 100.0, 1e4])
def test_charge_width_tends_to_the_strong_depletion_width(u0: float) -> None:
    eps_r, c = 10.0, 5.0
    barrier = u0 * VT
    ratio = es.mott_schottky_charge_width(eps_r, barrier, c, T) / es.mott_schottky_width(
        eps_r, barrier, c
    )
    assert ratio == pytest.approx(math.sqrt(1 - (1 - math.exp(-u0)) / u0), rel=1e-14)
    assert ratio < 1 and 1 - ratio == pytest.approx(1 / (2 * u0), rel=1 / u0)


@pytest.mark.parametrize("u0", [1e-3, 1e-2])
def test_charge_width_small_barrier_is_linear_screening(u0: float) -> None:
    """Q = eps Phi0 / lambda_1: w_eff = u0 lambda_1 (1 - u0/6 + ...)."""
    eps_r, c = 10.0, 5.0
    lam1 = es.debye_length(eps_r, T, c / 2)  # one carrier: drop the factor 2
    w = es.mott_schottky_charge_width(eps_r, u0 * VT, c, T)
    # the next term is O(u0^2): relative to u0/6 it is [-u0/6]
    assert w / (u0 * lam1) - 1 == pytest.approx(-u0 / 6, rel=u0 / 2)


@pytest.mark.parametrize(("u0", "z"), [(20.0, 1), (3.0, 1), (8.0, 2)])
def test_charge_width_is_the_depleted_charge(u0: float, z: int) -> None:
    """Integrate Poisson–Boltzmann for one carrier and add up the depleted charge."""
    eps_r, c = 10.0, 5.0
    eps = eps_r * VACUUM_PERMITTIVITY
    lam1 = math.sqrt(eps * VT / (z * z * FARADAY * c))  # in u = z e phi / kT
    barrier = u0 * VT / z

    # u' = -sqrt(2 (u - 1 + e^-u)) / lambda_1 and the depleted amount c (1 - e^-u)
    def rhs(_: float, y: np.ndarray) -> list[float]:
        u = max(y[0], 0.0)
        return [-math.sqrt(2 * (u + math.expm1(-u))) / lam1, -math.expm1(-u)]

    length = 40 * lam1 + es.mott_schottky_width(eps_r, barrier, c, z)
    sol = solve_ivp(rhs, (0.0, length), [u0, 0.0], method="LSODA", rtol=1e-12, atol=1e-16)
    depleted = float(sol.y[1, -1])  # integral of (1 - c/c_bg) dx: the width
    w = es.mott_schottky_charge_width(eps_r, barrier, c, T, z)
    assert depleted / w - 1 == pytest.approx(0, abs=6e-10)  # [<= 2.2e-10, at u0 = 20]


def test_charge_density() -> None:
    c = {"A": np.array([1.0, 2.0]), "B": np.array([0.5, 0.0]), "X": np.array([9.0, 9.0])}
    bg = {"A": np.array([1.0, 1.0]), "B": np.array([0.0, 1.0])}
    rho = es.charge_density(c, bg, {"A": 1, "B": -2, "X": 0})  # X neutral: no background
    assert np.allclose(rho, FARADAY * np.array([0.0 - 2 * 0.5, 1.0 + 2 * 1.0]), rtol=1e-15)
    none = es.charge_density(c, bg, {"X": 0})
    assert none.shape == (2,) and np.all(none == 0)


def test_has_reference() -> None:
    def setup(left: float | None, sheets: tuple = ()) -> es.PoissonSetup:
        return es.PoissonSetup(
            permittivity=np.ones(3),
            backgrounds={},
            potential={"left": left, "right": None},
            surface_charge={"left": 0.0, "right": 0.0},
            sheets=sheets,
        )

    assert setup(0.0).has_reference  # a fixed potential, even 0 V
    assert not setup(None).has_reference
    assert not setup(None, ((0, 1e-3, None),)).has_reference  # a sheet charge only
    assert setup(None, ((0, 0.0, 0.2),)).has_reference  # a pinned interface
