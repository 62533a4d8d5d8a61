"""Project exception hierarchy.

The command line maps :class:`InputError` subclasses to exit code 2 (bad input)
and every other :class:`CosinterError` to exit code 1.
"""

from __future__ import annotations


class CosinterError(Exception):
    """Base class of every error cosinter raises on purpose."""


class InputError(CosinterError):
    """Bad input from the user: a case file, an override, a path (exit code 2)."""


class CaseError(InputError):
    """A case file (or a ``--set`` override) that does not validate.

    Parameters
    ----------
    message
        What was expected.
    file
        The case file, if any.
    key
        Dotted key path, e.g. ``layers.0.thickness``.
    line
        1-based line in ``file`` where the key is written, if it could be found.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.key = key
        self.line = line
        self.detail = message
        where = []
        if file:
            where.append(str(file) + (f":{line}" if line else ""))
        if key:
            where.append(f"key '{key}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class MaterialError(InputError):
    """An unknown material or an inconsistent material definition."""


class ConvergenceError(CosinterError):
    """A time step that could not be made to converge, even at the smallest step.

    Parameters
    ----------
    message
        What failed.
    time_s, temperature_K
        Simulated time and temperature at the start of the failing step.
    species
        The species whose equation failed, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        time_s: float,
        temperature_K: float,
        species: str | None = None,
    ) -> None:
        self.time_s = time_s
        self.temperature_K = temperature_K
        self.species = species
        where = f"t = {time_s:.6g} s, T = {temperature_K:.2f} K ({temperature_K - 273.15:.1f} degC)"
        if species:
            where += f", species {species}"
        super().__init__(f"{message} at {where}")
