"""Tests of cosinter.models.thermal: temperature programs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cosinter.models.thermal import Hold, Ramp, Segment, Staircase, TemperatureProgram

C0 = 273.15  # K at 0 degC
K_PER_MIN = 1.0 / 60.0  # K/s
HOUR = 3600.0


def xrd_staircase(to_degC: float = 850.0) -> TemperatureProgram:
    """In-situ XRD protocol: 25 degC -> to, 50 K stairs at 10 K/min, 1 h holds."""
    return TemperatureProgram(
        25.0 + C0, [Staircase(to=to_degC + C0, step=50.0, rate=10 * K_PER_MIN, hold=HOUR)]
    )


# -- staircase ----------------------------------------------------------------------------


def test_staircase_not_a_multiple_of_step() -> None:
    """825 K is 16.5 stairs: 16 full stairs + one of 25 K, each followed by a hold."""
    p = xrd_staircase(850.0)
    assert len(p.segments) == 34
    kinds = [s.kind for s in p.segments]
    assert kinds == ["ramp", "hold"] * 17
    assert p.duration == pytest.approx(825.0 / (10 * K_PER_MIN) + 17 * HOUR)
    assert p.T_max == 850.0 + C0
    assert p.final == 850.0 + C0
    assert p.segments[-2].T_end == 850.0 + C0  # exactly, not approximately
    assert p.segments[-2].T_end - p.segments[-2].T_start == pytest.approx(25.0)
    assert p.temperature(p.duration) == 850.0 + C0
    assert p.temperature(1e9) == 850.0 + C0
    assert all(s.step == 0 for s in p.segments)
    assert [s.index for s in p.segments] == list(range(34))


def test_staircase_multiple_of_step_has_no_sliver() -> None:
    """800 K = 16 stairs exactly; round-off in 298.15 + 16*50 must not add a tiny stair."""
    p = xrd_staircase(825.0)
    ramps = [s for s in p.segments if s.kind == "ramp"]
    assert len(ramps) == 16
    assert all(r.T_end - r.T_start == pytest.approx(50.0) for r in ramps)
    assert p.final == 825.0 + C0
    assert p.duration == pytest.approx(800.0 / (10 * K_PER_MIN) + 16 * HOUR)


def test_staircase_downward_and_without_holds() -> None:
    p = TemperatureProgram(1000.0, [Staircase(to=880.0, step=50.0, rate=1.0, hold=0.0)])
    assert [s.kind for s in p.segments] == ["ramp"] * 3
    assert [s.T_end for s in p.segments] == [950.0, 900.0, 880.0]
    assert all(s.rate == -1.0 for s in p.segments)
    assert p.duration == pytest.approx(120.0)


def test_staircase_step_larger_than_span() -> None:
    p = TemperatureProgram(300.0, [Staircase(to=320.0, step=50.0, rate=1.0, hold=10.0)])
    assert [(s.kind, s.T_end) for s in p.segments] == [("ramp", 320.0), ("hold", 320.0)]


def test_staircase_to_current_temperature_is_empty() -> None:
    p = TemperatureProgram(300.0, [Staircase(to=300.0, step=50.0, rate=1.0, hold=10.0)])
    assert p.segments == ()
    assert p.duration == 0.0


# -- ramps and holds ----------------------------------------------------------------------


def sinter_program() -> TemperatureProgram:
    """Heat 300 -> 900 K at 2 K/s (300 s), hold 100 s, cool to 400 K at 5 K/s (100 s)."""
    return TemperatureProgram(300.0, [Ramp(rate=2.0, to=900.0), Hold(100.0), Ramp(5.0, 400.0)])


def test_ramp_hold_cool_segments() -> None:
    p = sinter_program()
    assert [(s.kind, s.t_start, s.t_end, s.T_start, s.T_end) for s in p.segments] == [
        ("ramp", 0.0, 300.0, 300.0, 900.0),
        ("hold", 300.0, 400.0, 900.0, 900.0),
        ("ramp", 400.0, 500.0, 900.0, 400.0),
    ]
    assert [s.rate for s in p.segments] == [2.0, 0.0, -5.0]
    assert [s.step for s in p.segments] == [0, 1, 2]
    assert p.duration == 500.0
    assert p.T_max == 900.0
    assert p.initial == 300.0
    np.testing.assert_array_equal(p.breakpoints, [0.0, 300.0, 400.0, 500.0])
    assert p.step_end_times() == (300.0, 400.0, 500.0)


def test_cooling_ramp_temperatures() -> None:
    p = sinter_program()
    assert p.temperature(450.0) == pytest.approx(650.0)
    assert p.rate_at(450.0) == -5.0
    assert p.T_max == 900.0
    assert p.first_time_at(650.0) == pytest.approx(175.0)  # on the way up, not down
    assert p.first_time_at(350.0) == pytest.approx(25.0)


def test_temperature_vectorised_and_clamped() -> None:
    p = sinter_program()
    t = np.array([-10.0, 0.0, 150.0, 300.0, 350.0, 450.0, 500.0, 1e6])
    T = p.temperature(t)
    assert isinstance(T, np.ndarray)
    np.testing.assert_allclose(T, [300, 300, 600, 900, 900, 650, 400, 400])
    grid = p.temperature(np.linspace(0, 500, 12).reshape(3, 4))
    assert grid.shape == (3, 4)
    assert isinstance(p.temperature(150.0), float)
    assert isinstance(p.temperature(150), float)


def test_segment_temperature() -> None:
    s = Segment(0, 0, "ramp", 10.0, 20.0, 300.0, 400.0)
    assert s.temperature(15.0) == 350.0
    assert s.temperature(0.0) == 300.0
    assert s.temperature(99.0) == 400.0
    np.testing.assert_allclose(s.temperature(np.array([10.0, 12.5, 20.0])), [300, 325, 400])
    assert s.rate == 10.0
    assert s.duration == 10.0
    h = Segment(1, 0, "hold", 20.0, 30.0, 400.0, 400.0)
    assert h.rate == 0.0
    assert h.temperature(25.0) == 400.0


def test_segment_at_boundaries() -> None:
    p = sinter_program()
    first, hold, cool = p.segments
    assert p.segment_at(0.0) is first
    assert p.segment_at(299.999) is first
    assert p.segment_at(300.0) is hold  # the one that starts there
    assert p.segment_at(400.0) is cool
    assert p.segment_at(499.0) is cool
    assert p.segment_at(500.0) is None
    assert p.segment_at(-1.0) is None
    assert p.rate_at(300.0) == 0.0
    assert p.rate_at(400.0) == -5.0
    assert p.rate_at(-1.0) == 0.0
    assert p.rate_at(600.0) == 0.0


def test_first_time_at() -> None:
    p = sinter_program()
    assert p.first_time_at(300.0) == 0.0  # initial T counts at t = 0
    assert p.first_time_at(900.0) == 300.0  # end of the ramp = start of the hold
    assert p.first_time_at(901.0) is None
    assert p.first_time_at(200.0) is None
    # A program starting with a hold reaches its initial T at 0 and nothing else.
    q = TemperatureProgram(500.0, [Hold(60.0), Ramp(1.0, 400.0)])
    assert q.first_time_at(500.0) == 0.0
    assert q.first_time_at(450.0) == pytest.approx(110.0)
    # Reached only on a cooling ramp after a hold.
    assert q.first_time_at(400.0) == pytest.approx(160.0)


def test_first_time_at_staircase_hold() -> None:
    p = xrd_staircase(850.0)
    rate = 10 * K_PER_MIN
    # 75 degC is reached at the end of the first stair's ramp (50 K / rate)
    assert p.first_time_at(75.0 + C0) == pytest.approx(50.0 / rate)
    # 125 degC: end of the second ramp, after two ramps and one hold
    assert p.first_time_at(125.0 + C0) == pytest.approx(100.0 / rate + HOUR)
    assert p.first_time_at(90.0 + C0) == pytest.approx(65.0 / rate + HOUR)


def test_step_end_times_with_empty_steps() -> None:
    p = TemperatureProgram(
        300.0, [Ramp(1.0, 300.0), Hold(0.0), Ramp(1.0, 310.0), Hold(5.0), Ramp(2.0, 310.0)]
    )
    assert [s.kind for s in p.segments] == ["ramp", "hold"]
    assert [s.step for s in p.segments] == [2, 3]
    assert p.step_end_times() == (0.0, 0.0, 10.0, 15.0, 15.0)


def test_empty_program() -> None:
    p = TemperatureProgram(300.0, [])
    assert p.duration == 0.0
    assert p.T_max == 300.0
    assert p.temperature(10.0) == 300.0
    np.testing.assert_array_equal(p.breakpoints, [0.0])
    assert p.segment_at(0.0) is None
    assert p.first_time_at(300.0) == 0.0
    assert p.table() == []


def test_table() -> None:
    rows = sinter_program().table()
    assert len(rows) == 3
    assert rows[2] == {
        "segment": 2,
        "step": 2,
        "kind": "ramp",
        "t_start_s": 400.0,
        "t_end_s": 500.0,
        "T_start_K": 900.0,
        "T_end_K": 400.0,
        "rate_K_per_s": -5.0,
    }


def test_temperature_continuous_and_bounded() -> None:
    p = xrd_staircase(850.0)
    t = np.linspace(-100.0, p.duration + 100.0, 20001)
    T = p.temperature(t)
    assert T.min() == 25.0 + C0
    assert T.max() == 850.0 + C0
    assert np.all(np.diff(T) >= 0.0)  # heating staircase never cools
    # Between breakpoints T is linear: midpoints are averages of the ends.
    bp = p.breakpoints
    mid = 0.5 * (bp[1:] + bp[:-1])
    np.testing.assert_allclose(
        p.temperature(mid), 0.5 * (p.temperature(bp[1:]) + p.temperature(bp[:-1]))
    )
    assert math.isclose(p.rate_at(1.0), 10 * K_PER_MIN)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Ramp(rate=0.0, to=500.0), "ramp rate"),
        (lambda: Ramp(rate=-1.0, to=500.0), "ramp rate"),
        (lambda: Ramp(rate=1.0, to=0.0), "'to'"),
        (lambda: Ramp(rate=float("nan"), to=500.0), "ramp rate"),
        (lambda: Hold(-1.0), "hold duration"),
        (lambda: Hold(float("inf")), "hold duration"),
        (lambda: Staircase(to=500.0, step=0.0, rate=1.0, hold=1.0), "staircase step"),
        (lambda: Staircase(to=500.0, step=10.0, rate=0.0, hold=1.0), "staircase rate"),
        (lambda: Staircase(to=500.0, step=10.0, rate=1.0, hold=-1.0), "staircase hold"),
        (lambda: Staircase(to=-5.0, step=10.0, rate=1.0, hold=1.0), "'to'"),
        (lambda: TemperatureProgram(0.0, []), "initial temperature"),
        (lambda: TemperatureProgram(-10.0, [Hold(1.0)]), "initial temperature"),
        (lambda: TemperatureProgram(300.0, [Hold(1.0), 5.0]), "step 1 must be"),  # type: ignore[list-item]
    ],
)
def test_bad_input(make: object, match: str) -> None:
    assert callable(make)
    with pytest.raises(ValueError, match=match):
        make()
