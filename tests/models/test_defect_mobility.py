"""Tests of cosinter.models.transport.DefectMobility: defect-mediated Li mobility in LLTO
(Ma & Li, Acc. Mater. Res. 5 (2024) 523)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosinter.case import DefectMobilitySpec
from cosinter.models.transport import CROWDING_SCALE_FLOOR, DefectMobility

RHO = 30_303.0  # formula units per m^3 (mol/m^3)
X0 = 0.44
TURNING = {575.0: 0.60, 650.0: 0.55, 750.0: 0.50}


def llto(intrinsic: float = 1e-3) -> DefectMobility:
    return DefectMobility(
        formula_density=RHO,
        full_occupancy=X0,
        reference=0.33,
        intrinsic=intrinsic,
        crowding_temperatures=tuple(TURNING),
        crowding_compositions=tuple(TURNING.values()),
    )


def conc(x: float | np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float) * RHO


# --------------------------------------------------------------------------- defects


def test_defects_obey_the_frenkel_constraints() -> None:
    m = llto(0.02)
    x = np.linspace(0.0, 1.0, 101)
    v, i = m.defects(x)
    assert np.all(v > 0) and np.all(i > 0)
    assert np.allclose(i - v, x - X0, atol=1e-15)
    assert np.allclose(i * v, 0.01**2, rtol=1e-12)


def test_composition_clips_negative_round_off() -> None:
    m = llto()
    assert np.array_equal(m.composition(np.array([-1e-9, 0.0, RHO])), [0.0, 0.0, 1.0])
    assert m.factor(np.array([-1e-9]), 650.0)[0] == m.factor(np.array([0.0]), 650.0)[0]


# --------------------------------------------------------------------------- full occupancy


@pytest.mark.parametrize("T", [575.0, 650.0, 750.0, 1000.0])
def test_only_the_intrinsic_floor_is_left_at_full_occupancy(T: float) -> None:
    m = llto(1e-3)
    f0 = m.factor(conc(X0), T)
    n_c = m.crowding_scale(T)
    v_ref = 0.44 - 0.33  # i_ref = (1e-3/2)^2 / v_ref: negligible
    floor = 0.5e-3 * (1.0 + np.exp(-0.5e-3 / n_c)) / v_ref
    assert f0 == pytest.approx(floor, rel=1e-4)


@pytest.mark.parametrize("T", [575.0, 650.0, 750.0])
def test_full_occupancy_is_the_mobility_minimum(T: float) -> None:
    """Within the sourced range nothing near x0 is much lower than the floor. (Above
    ~950 K the clipped crowding scale freezes the interstitial side below it.)"""
    m = llto(1e-3)
    f0 = m.factor(conc(X0), T)
    x = np.linspace(X0 - 0.05, X0 + 0.05, 2001)
    f = m.factor(conc(x), T)
    assert f.min() >= 0.5 * f0
    assert f.min() <= f0
    assert x[np.argmin(f)] == pytest.approx(X0, abs=2e-3)


@pytest.mark.parametrize("T", [575.0, 650.0, 750.0])
def test_exactly_zero_at_full_occupancy_without_intrinsic_defects(T: float) -> None:
    assert llto(0.0).factor(conc(X0), T) == 0.0


@pytest.mark.parametrize("intrinsic", [0.0, 1e-3, 1e-2])
@pytest.mark.parametrize("T", [575.0, 650.0, 750.0])
def test_continuous_across_full_occupancy(intrinsic: float, T: float) -> None:
    m = llto(intrinsic)
    f0 = float(m.factor(conc(X0), T))
    for eps in (1e-6, 1e-8, 1e-10):
        left, right = m.factor(conc(np.array([X0 - eps, X0 + eps])), T)
        assert abs(left - right) <= 3 * eps / 0.11
        assert abs(left - f0) <= 3 * eps / 0.11 and abs(right - f0) <= 3 * eps / 0.11


# --------------------------------------------------------------------------- reference, branches


@pytest.mark.parametrize("T", [300.0, 575.0, 612.0, 650.0, 700.0, 750.0, 900.0, 1200.0])
@pytest.mark.parametrize("intrinsic", [0.0, 1e-3, 0.02])
def test_factor_is_one_at_the_reference(T: float, intrinsic: float) -> None:
    assert llto(intrinsic).factor(conc(0.33), T) == pytest.approx(1.0, rel=1e-13)


def test_vacancy_branch_is_linear_in_the_vacancy_content() -> None:
    m = llto(0.0)
    x = np.linspace(0.0, 0.40, 41)
    for T in (575.0, 750.0, 1000.0):
        assert np.allclose(m.factor(conc(x), T), (X0 - x) / (X0 - 0.33), rtol=1e-12)


def test_vacancy_branch_does_not_crowd() -> None:
    """Far below x0 the factor is the same at every temperature (crowding is interstitial)."""
    m = llto(1e-3)
    f = [m.factor(conc(0.2), T) for T in (300.0, 575.0, 750.0, 1200.0)]
    assert np.allclose(f, f[0], rtol=1e-6)


# --------------------------------------------------------------------------- crowding


@pytest.mark.parametrize("intrinsic", [0.0, 1e-3, 1e-2])
@pytest.mark.parametrize(("T", "x_turn"), sorted(TURNING.items()))
def test_turning_compositions_are_reproduced(intrinsic: float, T: float, x_turn: float) -> None:
    """The conductivity x * factor peaks (on the interstitial side) where Ma & Li put it."""
    m = llto(intrinsic)
    assert m.turning_composition(T) == pytest.approx(x_turn, abs=1e-3)
    # and independently of turning_composition: a plain grid argmax
    x = np.linspace(X0 + 1e-4, 0.9, 200_001)
    sigma = m.conductivity_factor(conc(x), T)
    assert x[np.argmax(sigma)] == pytest.approx(x_turn, abs=1e-3)


def test_crowding_scales_without_intrinsic_defects_are_closed_form() -> None:
    """n_i = 0: d/dx[x (x - x0) exp(-(x - x0)/n_c)] = 0 gives n_c = x (x - x0) / (2x - x0)."""
    m = llto(0.0)
    expected = [x * (x - X0) / (2 * x - X0) for x in TURNING.values()]
    assert m.crowding_scales == pytest.approx(expected, rel=1e-9)


def test_crowding_lowers_the_mobility_as_temperature_rises() -> None:
    """At x = 0.62 (interstitial-rich) the crowding part of the factor falls from 575 to 750 K."""
    m = llto(1e-3)
    temps = np.linspace(575.0, 750.0, 8)
    _, i = m.defects(np.array([0.62]))
    crowd = [float(np.exp(-i[0] / m.crowding_scale(T))) for T in temps]
    assert np.all(np.diff(crowd) < 0)
    # the reference (vacancy side) hardly crowds, so the factor itself falls too
    f = [float(m.factor(conc(0.62), T)) for T in temps]
    assert np.all(np.diff(f) < 0)
    assert f[-1] < 0.5 * f[0]


def test_crowding_scale_decreases_with_temperature() -> None:
    m = llto(1e-3)
    temps = np.linspace(250.0, 1500.0, 2001)
    n_c = np.array([m.crowding_scale(T) for T in temps])
    assert np.all(np.diff(n_c) <= 0)
    inside = (temps >= 575.0) & (temps <= 750.0)
    assert np.all(np.diff(n_c[inside]) < 0)
    assert n_c.min() >= CROWDING_SCALE_FLOOR
    # ln n_c is extrapolated in 1/T: interstitials stay mobile at sintering temperatures
    assert 0.01 < m.crowding_scale(1123.15) < m.crowding_scale(750.0)
    assert m.crowding_scale(575.0) == pytest.approx(m.crowding_scales[0], rel=1e-14)
    assert m.crowding_scale(750.0) == pytest.approx(m.crowding_scales[-1], rel=1e-14)


def test_crowding_scale_is_linear_in_inverse_temperature_between_the_points() -> None:
    m = llto(1e-3)
    u1, u2 = 1 / 575.0, 1 / 650.0
    n1, n2 = m.crowding_scales[:2]
    T_mid = 2.0 / (u1 + u2)
    assert m.crowding_scale(T_mid) == pytest.approx(0.5 * (n1 + n2), rel=1e-12)


# --------------------------------------------------------------------------- robustness


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    c=st.lists(
        st.floats(min_value=-1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=20,
    ),
    T=st.floats(min_value=50.0, max_value=3000.0),
    intrinsic=st.sampled_from([0.0, 1e-6, 1e-3, 0.05]),
)
def test_factor_is_non_negative_and_finite(c: list[float], T: float, intrinsic: float) -> None:
    f = llto(intrinsic).factor(np.array(c), T)
    assert f.shape == (len(c),)
    assert np.all(np.isfinite(f))
    assert np.all(f >= 0)


def test_factor_keeps_the_shape_of_c() -> None:
    m = llto()
    c = conc(np.full((3, 4), 0.5))
    assert m.factor(c, 650.0).shape == (3, 4)


def test_from_spec_matches_the_direct_construction() -> None:
    spec = DefectMobilitySpec.model_validate(
        {
            "model": "llto_defect",
            "formula_density": "30.303 mol/L",
            "full_occupancy": 0.44,
            "reference": 0.33,
            "intrinsic": 1e-3,
            "crowding_temperatures": ["575 K", "650 K", "750 K"],
            "crowding_compositions": [0.60, 0.55, 0.50],
        }
    )
    m = DefectMobility.from_spec(spec)
    direct = llto(1e-3)
    for f in dataclasses.fields(DefectMobility):
        if f.init:
            assert getattr(m, f.name) == pytest.approx(getattr(direct, f.name), rel=1e-12)
    assert m.crowding_scales == pytest.approx(llto(1e-3).crowding_scales)


@pytest.mark.parametrize(
    "change",
    [
        {"reference": X0},
        {"intrinsic": -1e-3},
        {"crowding_temperatures": (650.0, 575.0, 750.0)},
        {"crowding_compositions": (0.60, 0.40, 0.50)},
        {"crowding_compositions": (0.60, 0.55)},
        {"formula_density": 0.0},
        {"intrinsic": 0.5},  # no crowding scale can put the maximum at 0.50
    ],
)
def test_invalid_parameters_are_rejected(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(llto(), **change)  # type: ignore[arg-type]


def test_non_positive_temperature_is_rejected() -> None:
    with pytest.raises(ValueError, match="temperature"):
        llto().crowding_scale(0.0)


def test_library_llto_mobility_is_consistent_with_its_bulk() -> None:
    """The LLTO entry: bulk Li (10 mol/L) is the reference Li0.33, so D0/Ea hold there,
    and the sourced turning points come out of the library parameters."""
    from cosinter.models.materials import resolve_material

    li = resolve_material("LLTO").species["Li"]
    assert li.mobility is not None
    m = DefectMobility.from_spec(li.mobility)
    for T in (298.15, 650.0, 1000.0):
        assert m.factor(np.array([li.initial]), T)[0] == pytest.approx(1.0, abs=1e-4)
    for T, x_turn in TURNING.items():
        assert m.turning_composition(T) == pytest.approx(x_turn, abs=1e-3)
