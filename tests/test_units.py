"""Tests of cosinter.units: case-file quantities -> SI floats."""

from __future__ import annotations

import math

import pytest

from cosinter.units import EV, SI_UNITS, UnitParseError, to_si

CONVERSIONS: list[tuple[str, str, float]] = [
    ("50 nm", "length", 50e-9),
    ("2.864 angstrom", "length", 2.864e-10),
    ("1 um", "length", 1e-6),
    ("1 h", "time", 3600.0),
    ("10 min", "time", 600.0),
    ("250 ms", "time", 0.25),
    ("850 degC", "temperature", 1123.15),
    ("25 degC", "temperature", 298.15),
    ("-10 degC", "temperature", 263.15),
    ("25 °C", "temperature", 298.15),
    ("500 K", "temperature", 500.0),
    ("50 K", "temperature_difference", 50.0),
    ("10 K/min", "heating_rate", 1.0 / 6.0),
    ("10 degC/min", "heating_rate", 1.0 / 6.0),
    ("5 K/s", "heating_rate", 5.0),
    ("1e-14 m^2/s", "diffusivity", 1e-14),
    ("4.55e-11 cm^2/s", "diffusivity", 4.55e-15),
    ("1e-14 m**2/s", "diffusivity", 1e-14),
    ("0.85 eV", "energy", 0.85 * 1.602176634e-19),
    ("-0.1 eV", "energy", -0.1 * 1.602176634e-19),
    ("1 J", "energy", 1.0),
    ("49.3 mol/L", "concentration", 49300.0),
    ("1 mol/m^3", "concentration", 1.0),
    ("0.1 V", "potential", 0.1),
    ("250 mV", "potential", 0.25),
    ("1 uC/cm^2", "surface_charge", 1e-2),
    ("1e13 1/s", "rate", 1e13),
    ("6 1/min", "rate", 0.1),
    ("30 deg", "angle", math.pi / 6),
    ("1 rad", "angle", 1.0),
    ("50 %", "dimensionless", 0.5),
    ("3", "dimensionless", 3.0),
]


@pytest.mark.parametrize(("text", "kind", "expected"), CONVERSIONS)
def test_to_si_each_kind(text: str, kind: str, expected: float) -> None:
    assert to_si(text, kind) == pytest.approx(expected, rel=1e-12)


def test_every_kind_is_covered() -> None:
    """The conversion table above touches every kind the registry declares."""
    assert {kind for _, kind, _ in CONVERSIONS} == set(SI_UNITS)


def test_ev_constant() -> None:
    assert EV == 1.602176634e-19


@pytest.mark.parametrize("kind", sorted(SI_UNITS))
@pytest.mark.parametrize("value", [3, 2.5e-9, "2.5e-9", "7"])
def test_bare_numbers_are_si(kind: str, value: float | str) -> None:
    """A bare number (or a number without units inside a string) is already SI."""
    assert to_si(value, kind) == float(value)


def test_bare_temperature_is_kelvin_not_celsius() -> None:
    assert to_si(300, "temperature") == 300.0
    assert to_si("300", "temperature") == 300.0


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("5 K", "length"),
        ("50 nm", "time"),
        ("1 h", "temperature"),
        ("1 eV", "temperature"),
        ("10 K", "heating_rate"),
        ("10 K/min", "temperature_difference"),
        ("1e-14 m/s", "diffusivity"),
        ("1 kJ/mol", "energy"),  # molar energy is not a per-particle energy
        ("49.3 mol", "concentration"),
        ("1 A", "potential"),
        ("1 C", "surface_charge"),
        ("30 nm", "angle"),
        ("2 m", "dimensionless"),
        ("5 nm nm", "length"),
    ],
)
def test_wrong_dimension_is_an_error(text: str, kind: str) -> None:
    with pytest.raises(UnitParseError) as info:
        to_si(text, kind)
    message = str(info.value)
    assert repr(text) in message
    assert "expected" in message


def test_wrong_dimension_message_names_the_expected_unit() -> None:
    with pytest.raises(UnitParseError, match=r"expected m \(e\.g\. '50 nm'\)"):
        to_si("5 K", "length")


@pytest.mark.parametrize("text", ["abc", "", "50 parsecs per fortnight squared x", "nm 50 )"])
def test_unreadable_strings(text: str) -> None:
    with pytest.raises(UnitParseError, match="cannot read"):
        to_si(text, "length")


@pytest.mark.parametrize("value", [True, False, None, [1.0], {"a": 1}])
def test_non_quantities_rejected(value: object) -> None:
    with pytest.raises(UnitParseError):
        to_si(value, "length")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.inf, math.nan, "inf nm", "nan", "-inf"])
def test_non_finite_rejected(value: float | str) -> None:
    with pytest.raises(UnitParseError, match="finite"):
        to_si(value, "length")


def test_unknown_kind() -> None:
    with pytest.raises(KeyError):
        to_si("1 m", "speed")


# --------------------------------------------------------------- temperature differences


@pytest.mark.parametrize(
    "text",
    ["50 degC", "50 °C", "50°C", "50 delta_degC", "50 K", "90 degF", "50 celsius"],
)
def test_celsius_as_a_difference_is_kelvin(text: str) -> None:
    """A step of "50 degC" is 50 K, not 323.15 K (offset units mean a difference here)."""
    assert to_si(text, "temperature_difference") == pytest.approx(50.0, rel=1e-12)


@pytest.mark.parametrize(
    "text", ["10 degC/min", "10 delta_degC/min", "10 K/min", "18 degF/min", "10 °C/min"]
)
def test_heating_rates_with_offset_units(text: str) -> None:
    assert to_si(text, "heating_rate") == pytest.approx(1.0 / 6.0, rel=1e-12)


def test_absolute_temperature_keeps_the_offset() -> None:
    """The same text as an absolute temperature is offset: the two kinds differ."""
    assert to_si("50 degC", "temperature") == pytest.approx(323.15)
    assert to_si("50 degC", "temperature_difference") == pytest.approx(50.0)
    assert to_si("77 degF", "temperature") == pytest.approx(298.15)
