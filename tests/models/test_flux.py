r"""Tests of cosinter.models.flux: the exact two-point hop flux and its rates.

Numbers in brackets are what was measured; each assertion keeps a margin of about
2-3x over them.

Checks
------
* :func:`hop_rates` against :func:`hop_rates_reference` over a grid of half-cell
  resistances, partition steps, drifts (|v| <= 40, including +-1e-7 and 0) and face
  fractions [1.1e-14 relative].
* The returned derivatives against central differences in v (step 1e-5)
  [9.9e-10 relative to max(|dk/dv|, k)].
* Scharfetter–Gummel: equal diffusivities and no partition give
  :math:`(D/d)B(\pm v)` for any split of the distance [6.4e-15 relative].
* v = 0: the series resistance across a partition,
  :math:`J = (c_1 - c_2/K)/(r_1 + r_2/K)` [3.1e-15 relative].
* J = 0 at the Fermi–Dirac (lattice gas) and Boltzmann (dilute) equilibria with a
  potential difference, random parameters [1.1e-14 and 2.1e-15 of the one-way flux].
* Extreme drifts (|v| = 800, 1400, and v = 1e4, equal halves): finite,
  non-negative, no overflow/invalid/divide (underflow of an e^-800 rate to 0 is the
  right answer and is allowed), and the drift-limited asymptotes
  :math:`k = |v| f / r` [<= 1.7e-13; 2.8e-13 for dk/dv]. Whenever :math:`v f < -709.8`
  on either half (v = -800 with f1 = 0.01 or 0.99; v = -1e4) the derivative helper
  overflowed in ``expm1`` once (values right, but a RuntimeWarning); fixed, tested.
* A blocked face (r = inf): both rates and derivatives exactly 0, no warnings.
* :func:`log_e` and :func:`dlog_e` around 0: against their Taylor series for
  1e-9 <= |y| <= 1e-2 (absolute [1.5e-16] and [1.5e-10]: the direct branch of
  ``dlog_e`` subtracts two numbers of size 1/y just above the switch at 1e-6), no
  jump at the switch, exact values at 0, and ``dlog_e`` is the derivative of ``log_e``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from cosinter.models.flux import dlog_e, hop_flux, hop_rates, hop_rates_reference, log_e

FloatArray = np.ndarray


def grid() -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """r1, r2 (s/m), dpsi0, v, f1 over a product grid of moderate values."""
    rows = np.array(
        list(
            itertools.product(
                [1e2, 1e5, 3e8],
                [1e2, 1e5, 3e8],
                [-6.0, -1.0, 0.0, 0.7, 5.0],
                [-40.0, -3.0, -1e-7, 0.0, 2e-9, 0.5, 3.0, 40.0],
                [0.05, 0.5, 0.8],
            )
        )
    )
    return rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]


def bernoulli(y: FloatArray) -> FloatArray:
    """B(y) = y / (e^y - 1), B(0) = 1."""
    safe = np.where(y == 0, 1.0, y)
    return np.where(y == 0, 1.0, safe / np.expm1(safe))


def log_e_series(y: FloatArray) -> FloatArray:
    """ln((e^y - 1)/y) = y/2 + ln(sinh(y/2)/(y/2)), to y^6."""
    return y / 2 + y**2 / 24 - y**4 / 2880 + y**6 / 181440


def dlog_e_series(y: FloatArray) -> FloatArray:
    return 0.5 + y / 12 - y**3 / 720 + y**5 / 30240


def test_rates_match_the_plain_formula() -> None:
    r1, r2, dpsi0, v, f1 = grid()
    k_plus, k_minus, _, _ = hop_rates(np.log(r1), np.log(r2), dpsi0, v, f1)
    ref = np.array([hop_rates_reference(*row) for row in zip(r1, r2, dpsi0, v, f1, strict=True)])
    assert np.all(k_plus > 0) and np.all(k_minus > 0)
    assert np.max(np.abs(k_plus / ref[:, 0] - 1)) < 3e-14  # [1.13e-14]
    assert np.max(np.abs(k_minus / ref[:, 1] - 1)) < 3e-14  # [1.11e-14]


def test_rate_derivatives_match_finite_differences() -> None:
    r1, r2, dpsi0, v, f1 = grid()
    lr1, lr2 = np.log(r1), np.log(r2)
    k_plus, k_minus, dk_plus, dk_minus = hop_rates(lr1, lr2, dpsi0, v, f1)
    h = 1e-5  # truncation ~h^2, round-off ~1e-16/h: both ~1e-10 here
    up = hop_rates(lr1, lr2, dpsi0, v + h, f1)
    down = hop_rates(lr1, lr2, dpsi0, v - h, f1)
    fd_plus = (up[0] - down[0]) / (2 * h)
    fd_minus = (up[1] - down[1]) / (2 * h)
    err_plus = np.abs(fd_plus - dk_plus) / np.maximum(np.abs(dk_plus), k_plus)
    err_minus = np.abs(fd_minus - dk_minus) / np.maximum(np.abs(dk_minus), k_minus)
    assert np.max(err_plus) < 3e-9, np.max(err_plus)  # [9.9e-10]
    assert np.max(err_minus) < 3e-9, np.max(err_minus)  # [8.8e-10]


@pytest.mark.parametrize("f1", [0.5, 0.2, 0.9])
def test_scharfetter_gummel_limit(f1: float) -> None:
    """Equal D, no partition: (D/d) B(v) forward, (D/d) B(-v) backward, for any split."""
    D, d = 1e-15, 1e-9
    v = np.array([-50.0, -5.0, -1.0, -1e-8, 0.0, 1e-8, 0.3, 5.0, 50.0])
    n = len(v)
    k_plus, k_minus, _, _ = hop_rates(
        np.full(n, np.log(f1 * d / D)),
        np.full(n, np.log((1 - f1) * d / D)),
        np.zeros(n),
        v,
        np.full(n, f1),
    )
    assert np.max(np.abs(k_plus / (D / d * bernoulli(v)) - 1)) < 2e-14  # [<= 6.4e-15]
    assert np.max(np.abs(k_minus / (D / d * bernoulli(-v)) - 1)) < 2e-14  # [<= 6.2e-15]
    # detailed balance of the pair: k-/k+ = e^v
    assert np.allclose(k_minus / k_plus, np.exp(v), rtol=5e-15, atol=0)  # [1.8e-15]


@pytest.mark.parametrize("dpsi0", [-8.0, -1.0, 0.0, 2.0, 9.0])
def test_partition_limit_is_the_series_resistance(dpsi0: float) -> None:
    """v = 0: J = (c1 - c2/K) / (r1 + r2/K) with K = exp(-dpsi0)."""
    r1, r2, c1, c2 = 3e5, 7e6, 2.0, 5.0
    k_plus, k_minus, _, _ = hop_rates(
        np.log([r1]), np.log([r2]), np.array([dpsi0]), np.zeros(1), np.array([0.3])
    )
    K = np.exp(-dpsi0)
    J = hop_flux(k_plus, k_minus, np.array([c1]), np.array([c2]), np.zeros(1), np.zeros(1))
    series = (c1 - c2 / K) / (r1 + r2 / K)
    assert abs(J[0] / series - 1) < 1e-14, J[0] / series - 1  # [<= 3.1e-15]


def test_zero_flux_at_fermi_dirac_and_boltzmann_equilibria() -> None:
    """logit(theta) + mu0/kT + z e phi/kT equal on both sides: J = 0 to round-off."""
    rng = np.random.default_rng(20240611)
    n = 2000
    s1, s2 = rng.uniform(1e3, 5e4, n), rng.uniform(1e3, 5e4, n)  # sites, mol/m^3
    mu1, mu2 = rng.uniform(-3, 3, n), rng.uniform(-3, 3, n)  # mu0 / kT
    th1, th2 = rng.uniform(0.01, 0.99, n), rng.uniform(0.01, 0.99, n)
    lr1, lr2 = np.log(rng.uniform(1e2, 1e8, n)), np.log(rng.uniform(1e2, 1e8, n))
    f1 = rng.uniform(0.1, 0.9, n)
    logit1, logit2 = np.log(th1 / (1 - th1)), np.log(th2 / (1 - th2))
    v = logit1 - logit2 + mu1 - mu2  # z e (phi2 - phi1) / kT that balances them
    assert np.max(np.abs(v)) > 8  # real potential differences [up to 11.0]
    dpsi0 = (mu2 - np.log(s2)) - (mu1 - np.log(s1))
    k_plus, k_minus, _, _ = hop_rates(lr1, lr2, dpsi0, v, f1)
    c1, c2 = th1 * s1, th2 * s2
    J = hop_flux(k_plus, k_minus, c1, c2, 1 / s1, 1 / s2)
    one_way = k_plus * (1 - th2) * c1
    assert np.max(np.abs(J) / one_way) < 3e-14  # [1.1e-14]
    # dilute: Boltzmann c2 = c1 exp(-(mu2 - mu1) - v), no site terms
    c2_dilute = c1 * np.exp(-(mu2 - mu1) - v)
    k_plus, k_minus, _, _ = hop_rates(lr1, lr2, mu2 - mu1, v, f1)
    J = hop_flux(k_plus, k_minus, c1, c2_dilute, np.zeros(n), np.zeros(n))
    assert np.max(np.abs(J) / (k_plus * c1)) < 6e-15  # [2.1e-15]


@contextlib.contextmanager
def strict() -> Iterator[None]:
    """Warnings as errors; numpy overflow/invalid/divide raise (underflow to 0 is fine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


@pytest.mark.parametrize("v", [800.0, -800.0, 1400.0, -1400.0, 1e4])
def test_extreme_drift_equal_halves(v: float) -> None:
    """|v f| <= 700 on both halves (see the xfail below for more)."""
    r1, r2, dpsi0, f1 = 1e3, 1e4, 0.3, 0.5
    with strict():
        out = hop_rates(
            np.log([r1]), np.log([r2]), np.array([dpsi0]), np.array([v]), np.array([f1])
        )
    k_plus, k_minus, dk_plus, dk_minus = (float(a[0]) for a in out)
    assert all(np.isfinite([k_plus, k_minus, dk_plus, dk_minus]))
    assert k_plus >= 0 and k_minus >= 0
    # drift-limited: the uphill rate vanishes, the downhill one is |v| f / r of its side.
    # k- = exp(dpsi0 + v - ln Q) loses ~|v| ulp: [9.1e-14, 1.1e-13, 1.7e-13] for
    # v = 800, 1400, 1e4, and [1.1e-13, 1.8e-13, 2.8e-13] in dk-/dv
    if v > 0:  # cell 2 higher for z > 0: backward
        assert k_plus == 0.0 and dk_plus == 0.0
        assert abs(k_minus / (v * (1 - f1) / r2) - 1) < 4e-13
        assert abs(dk_minus / ((1 - f1) / r2) - 1) < 7e-13
    else:
        assert k_minus == 0.0 and dk_minus == 0.0
        assert abs(k_plus / (-v * f1 / r1) - 1) < 4e-16  # [1.1e-16]
        assert abs(dk_plus / (-f1 / r1) - 1) < 4e-16  # [0]


@pytest.mark.parametrize(("v", "f1"), [(-800.0, 0.01), (-800.0, 0.99), (-1e4, 0.5)])
def test_extreme_drift_no_overflow(v: float, f1: float) -> None:
    with strict():
        out = hop_rates(
            np.log([1e3]), np.log([1e4]), np.array([0.3]), np.array([v]), np.array([f1])
        )
        assert float(dlog_e(np.array(v))) == pytest.approx(-1 / v, rel=1e-14)
    assert all(np.isfinite(a[0]) and a[0] >= 0 for a in out[:2])


def test_blocked_face_has_zero_rates() -> None:
    with strict():
        out = hop_rates(
            np.array([np.inf, 3.0]),
            np.array([2.0, np.inf]),
            np.array([0.5, -0.5]),
            np.array([3.0, -2.0]),
            np.array([0.4, 0.4]),
        )
    for a in out:
        assert np.all(a == 0.0), out


def test_log_e_around_zero() -> None:
    small = np.logspace(-9, -2, 2001)
    y = np.concatenate([small, -small])
    # absolute error is what the rates see (k = exp(-ln Q))
    assert np.max(np.abs(log_e(y) - log_e_series(y))) < 5e-16  # [1.5e-16]
    # the direct branch of dlog_e cancels two terms of size 1/y just above |y| = 1e-6;
    # dlog_e only enters Newton's Jacobian, so 1e-10 is harmless there
    assert np.max(np.abs(dlog_e(y) - dlog_e_series(y))) < 4e-10  # [1.5e-10]
    assert float(log_e(np.array(0.0))) == 0.0
    assert float(dlog_e(np.array(0.0))) == 0.5
    # no jump at the switch between series and direct formula (|y| = 1e-6)
    for edge in (1e-6, -1e-6):
        below, above = edge * (1 - 1e-9), edge * (1 + 1e-9)
        pair = np.array([below, above])
        assert abs(float(np.diff(log_e(pair))[0]) - 0.5 * (above - below)) < 3e-16
        assert abs(float(np.diff(dlog_e(pair))[0])) < 3e-10


def test_log_e_large_arguments_and_its_derivative() -> None:
    y = np.array([-1e5, -800.0, -30.0, -1.0, 0.3, 1.0, 30.0, 800.0, 1e5])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = log_e(y)
        slope = dlog_e(y[y > -700])
    # independent forms: the plain formula where it is safe, else its asymptote
    # (the neglected e^-|y| <= e^-800 is far below round-off)
    exact = [
        math.log(math.expm1(t) / t)
        if abs(t) <= 30
        else (t - math.log(t) if t > 0 else -math.log(-t))
        for t in y
    ]
    assert np.allclose(value, exact, rtol=4e-16, atol=4e-16)  # [1.1e-16]
    # d/dy ln E = 1/(1 - e^-y) - 1/y -> 1 - 1/y (y >> 1), 1/|y| (y << -1)
    exact_slope = [
        1 / (1 - math.exp(-t)) - 1 / t if abs(t) <= 30 else (1 - 1 / t if t > 0 else -1 / t)
        for t in y[y > -700]
    ]
    assert np.allclose(slope, exact_slope, rtol=6e-16, atol=0)  # [2.2e-16]
    # dlog_e is the derivative of log_e
    z = np.array([-20.0, -2.0, -0.1, 0.05, 1.5, 20.0])
    h = 1e-5
    fd = (log_e(z + h) - log_e(z - h)) / (2 * h)
    assert np.max(np.abs(fd - dlog_e(z))) < 6e-11  # [1.9e-11]
