"""Units at the edges: one pint registry and helpers that turn "50 nm" into SI floats.

Every dimensional value in a case or library file is either a string with units
(``"50 nm"``, ``"10 K/min"``, ``"0.9 eV"``, ``"49.3 mol/L"``, ``"25 degC"``) or a
bare number, which means SI. Inside the code everything is SI: m, s, K, mol/m^3,
J (energies, including activation energies and chemical potentials), V, C/m^2.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, Final

import pint

ureg: Final[pint.UnitRegistry] = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
ureg.formatter.default_format = "~P"

#: Physical constants in SI (CODATA 2018 exact values).
BOLTZMANN: Final = 1.380649e-23  # J/K
ELEMENTARY_CHARGE: Final = 1.602176634e-19  # C
AVOGADRO: Final = 6.02214076e23  # 1/mol
FARADAY: Final = ELEMENTARY_CHARGE * AVOGADRO  # C/mol
GAS_CONSTANT: Final = BOLTZMANN * AVOGADRO  # J/(mol K)
VACUUM_PERMITTIVITY: Final = 8.8541878128e-12  # F/m
EV: Final = ELEMENTARY_CHARGE  # J per eV
ZERO_CELSIUS: Final = 273.15  # K

#: The SI unit, as pint understands it, of each kind of quantity a case file holds.
SI_UNITS: Final[dict[str, str]] = {
    "length": "m",
    "time": "s",
    "temperature": "K",
    "temperature_difference": "K",
    "heating_rate": "K/s",
    "diffusivity": "m**2/s",
    "energy": "J",
    "concentration": "mol/m**3",
    "potential": "V",
    "surface_charge": "C/m**2",
    "angle": "rad",
    "rate": "1/s",
    "dimensionless": "dimensionless",
}

#: Units that are valid but not dimensionally SI-obvious: what a user reads in messages.
DISPLAY_UNITS: Final[dict[str, str]] = {
    "length": "m (e.g. '50 nm')",
    "time": "s (e.g. '1 h')",
    "temperature": "K (e.g. '850 degC' or 1123.15)",
    "temperature_difference": "K (e.g. '50 K')",
    "heating_rate": "K/s (e.g. '10 K/min')",
    "diffusivity": "m^2/s (e.g. '1e-14 m^2/s')",
    "energy": "J (e.g. '0.85 eV')",
    "concentration": "mol/m^3 (e.g. '49.3 mol/L')",
    "potential": "V (e.g. '0.1 V')",
    "surface_charge": "C/m^2",
    "angle": "rad (e.g. '30 deg')",
    "rate": "1/s (e.g. '1e13 1/s')",
    "dimensionless": "a number",
}


#: Offset temperature units, and the difference units they mean in a step or a rate.
_DELTA_UNITS: Final[dict[str, str]] = {
    **dict.fromkeys(("degC", "celsius", "degree_Celsius", "°C"), "delta_degC"),
    **dict.fromkeys(("degF", "fahrenheit", "degree_Fahrenheit", "°F"), "delta_degF"),
}
_OFFSET_UNIT: Final = re.compile(
    r"(?<![A-Za-z_])(" + "|".join(map(re.escape, _DELTA_UNITS)) + r")(?![A-Za-z_0-9])"
)


class UnitParseError(ValueError):
    """A quantity string that is not a number with units of the expected kind."""


@lru_cache(maxsize=4096)
def _parse(text: str) -> Any:
    try:
        q: Any = ureg.Quantity(text.strip())
    except Exception as exc:  # pint raises several unrelated types
        raise UnitParseError(f"cannot read {text!r} as a quantity ({exc})") from None
    return q


def to_si(value: str | float | int, kind: str) -> float:
    """Convert a case-file value to an SI float.

    Parameters
    ----------
    value
        A string with units, or a bare number (already SI).
    kind
        A key of :data:`SI_UNITS`.

    Returns
    -------
    float
        The value in the SI unit of ``kind``.

    Raises
    ------
    UnitParseError
        If the string cannot be parsed or has the wrong dimension.

    Notes
    -----
    Temperatures accept offset units (``"25 degC"`` is 298.15 K). Temperature
    *differences* and heating rates treat ``degC`` as a difference (``"50 degC"``
    as a step is 50 K), which is what a user writing a step or rate means.
    """
    if kind not in SI_UNITS:
        raise KeyError(kind)
    if isinstance(value, bool):
        raise UnitParseError(f"expected a quantity, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise UnitParseError(f"{value!r} is not a finite number")
        return float(value)
    if not isinstance(value, str):
        raise UnitParseError(f"expected a string with units or a number, got {value!r}")
    text = value
    if kind in ("temperature_difference", "heating_rate"):
        text = _OFFSET_UNIT.sub(lambda m: _DELTA_UNITS[m.group(1)], text)
    q: Any = _parse(text)
    target = SI_UNITS[kind]
    if isinstance(q.magnitude, int | float) and q.unitless and kind != "dimensionless":
        # A bare number inside a string, e.g. "1e-14": SI as documented.
        if not math.isfinite(q.magnitude):
            raise UnitParseError(f"{value!r} is not a finite number")
        return float(q.magnitude)
    try:
        result = float(q.to(target).magnitude)
    except pint.DimensionalityError:
        raise UnitParseError(
            f"{value!r} has units of {q.units:~P} ({q.dimensionality}); "
            f"expected {DISPLAY_UNITS[kind]}"
        ) from None
    if not math.isfinite(result):
        raise UnitParseError(f"{value!r} is not a finite number; expected {DISPLAY_UNITS[kind]}")
    return result


def celsius(temperature_K: float) -> float:
    """Kelvin to degrees Celsius (for display only)."""
    return temperature_K - ZERO_CELSIUS
