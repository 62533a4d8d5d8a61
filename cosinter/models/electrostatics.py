r"""Electrostatics in plain numpy: Poisson's source, Debye lengths, exact space charge.

The potential :math:`\phi` (V) solves

.. math::

   -\nabla\cdot\left(\varepsilon_0\varepsilon_r\nabla\phi\right)
       = \rho = F \sum_i z_i \left(c_i - c_{i,\mathrm{bg}}\right)

with :math:`c_{i,\mathrm{bg}}` an immobile background per material and species (by
default its initial concentration, so each material starts neutral) plus sheet
charges on internal interfaces. Boundary conditions per end: a fixed potential, a
fixed surface charge :math:`\varepsilon\,\partial\phi/\partial n = \sigma_s`
(:math:`n` the outward normal), or zero field. Charged species then drift:
:math:`\mu_i` gains :math:`z_i e \phi` (see :mod:`cosinter.models.flux`).

The exact solutions used to verify the solver live here too: Gouy–Chapman with
Grahame's relation for a symmetric electrolyte, and the Mott–Schottky depletion
width for one carrier over a fixed background (Bard & Faulkner, *Electrochemical
Methods*, 2nd ed., 2001, sec. 13.3; Sze & Ng, *Physics of Semiconductor Devices*,
3rd ed., 2007, sec. 2.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cosinter.units import BOLTZMANN, ELEMENTARY_CHARGE, FARADAY, GAS_CONSTANT, VACUUM_PERMITTIVITY

FloatArray = NDArray[np.float64]


def thermal_voltage(T: float) -> float:
    """kT/e (V)."""
    return BOLTZMANN * T / ELEMENTARY_CHARGE


def charge_density(
    concentrations: Mapping[str, FloatArray],
    backgrounds: Mapping[str, FloatArray],
    charges: Mapping[str, int],
) -> FloatArray:
    r"""Space charge :math:`\rho = F\sum_i z_i (c_i - c_{i,\mathrm{bg}})` (C/m^3) per cell."""
    rho: FloatArray | None = None
    for name, z in charges.items():
        if not z:
            continue
        term = FARADAY * z * (np.asarray(concentrations[name]) - backgrounds[name])
        rho = term if rho is None else rho + term
    if rho is None:
        first = next(iter(concentrations.values()))
        return np.zeros_like(np.asarray(first, dtype=float))
    return rho


def debye_length(relative_permittivity: float, T: float, c_bulk: float, z: int = 1) -> float:
    r"""Debye length of a symmetric z:z electrolyte (m).

    .. math:: \lambda_D = \sqrt{\frac{\varepsilon_r\varepsilon_0 R T}{2 F^2 z^2 c_\infty}}

    For one mobile carrier of concentration :math:`c` over a fixed background, drop
    the factor 2 (pass ``c_bulk = c/2``).
    """
    eps = relative_permittivity * VACUUM_PERMITTIVITY
    return float(np.sqrt(eps * GAS_CONSTANT * T / (2.0 * FARADAY**2 * z**2 * c_bulk)))


def gouy_chapman_potential(
    x: FloatArray, phi0: float, relative_permittivity: float, T: float, c_bulk: float, z: int = 1
) -> FloatArray:
    r"""Potential (V) in front of a wall at potential ``phi0``, semi-infinite z:z electrolyte.

    .. math::

       \tanh\frac{z e\phi}{4kT} = \tanh\frac{z e\phi_0}{4kT}\,e^{-x/\lambda_D}
    """
    lam = debye_length(relative_permittivity, T, c_bulk, z)
    vt = thermal_voltage(T)
    g = np.tanh(z * phi0 / (4.0 * vt)) * np.exp(-np.asarray(x, dtype=float) / lam)
    return np.asarray(4.0 * vt / z * np.arctanh(g))


def boltzmann_concentration(phi: FloatArray, c_bulk: float, z: int, T: float) -> FloatArray:
    r""":math:`c = c_\infty \exp(-z e \phi / kT)` (mol/m^3), dilute equilibrium."""
    return np.asarray(c_bulk * np.exp(-z * np.asarray(phi) / thermal_voltage(T)))


def grahame_surface_charge(
    phi0: float, relative_permittivity: float, T: float, c_bulk: float, z: int = 1
) -> float:
    r"""Surface charge (C/m^2) on a wall at potential ``phi0`` (Grahame).

    .. math::

       \sigma_s = \sqrt{8\varepsilon_r\varepsilon_0 n_\infty kT}\,
                  \sinh\frac{z e\phi_0}{2kT}, \qquad n_\infty = N_A c_\infty
    """
    eps = relative_permittivity * VACUUM_PERMITTIVITY
    n_inf = c_bulk * GAS_CONSTANT / BOLTZMANN
    return float(
        np.sqrt(8.0 * eps * n_inf * BOLTZMANN * T) * np.sinh(z * phi0 / (2.0 * thermal_voltage(T)))
    )


def mott_schottky_width(
    relative_permittivity: float, barrier: float, c_background: float, z: int = 1
) -> float:
    r"""Depletion width (m) of one carrier over a fixed background, strong depletion.

    .. math:: w = \sqrt{\frac{2\varepsilon\,\Phi_0}{z e\,n}}, \qquad n = N_A c

    ``barrier`` is :math:`|\Phi_0|` (V), the potential drop across the depleted zone.
    """
    eps = relative_permittivity * VACUUM_PERMITTIVITY
    return float(np.sqrt(2.0 * eps * abs(barrier) / (abs(z) * FARADAY * c_background)))


def mott_schottky_charge_width(
    relative_permittivity: float, barrier: float, c_background: float, T: float, z: int = 1
) -> float:
    r"""Exact equivalent depletion width (m): depleted charge over :math:`zFc`.

    One Boltzmann carrier over its background, a barrier :math:`\Phi_0` of the sign
    that repels it (:math:`u_0 = z e\Phi_0/kT > 0`); the first integral of
    Poisson–Boltzmann gives

    .. math::

       w_{\mathrm{eff}} = \frac{Q}{zFc} = \sqrt{\frac{2\varepsilon}{zFc}
           \left[\Phi_0 - \frac{kT}{ze}\left(1 - e^{-u_0}\right)\right]}

    which tends to :func:`mott_schottky_width` when :math:`u_0 \gg 1`.
    """
    eps = relative_permittivity * VACUUM_PERMITTIVITY
    vt = thermal_voltage(T) / abs(z)
    u0 = abs(barrier) / vt
    return float(
        np.sqrt(
            2.0 * eps * (abs(barrier) - vt * (-np.expm1(-u0))) / (abs(z) * FARADAY * c_background)
        )
    )


@dataclass(frozen=True)
class PoissonSetup:
    """Everything Poisson's equation needs beyond the mesh, SI.

    Attributes
    ----------
    permittivity
        :math:`\\varepsilon_0\\varepsilon_r` per cell (F/m).
    backgrounds
        Immobile background per charged species, per cell (mol/m^3).
    potential
        Fixed potential per end (``"left"``, ``"right"``; V), None for none.
    surface_charge
        Surface charge per end (C/m^2); 0 when not given.
    sheets
        ``(after_layer, sheet_charge C/m^2, pinned potential V or None)`` per
        internal interface with conditions.
    """

    permittivity: FloatArray
    backgrounds: Mapping[str, FloatArray]
    potential: Mapping[str, float | None]
    surface_charge: Mapping[str, float]
    sheets: tuple[tuple[int, float, float | None], ...] = ()

    @property
    def has_reference(self) -> bool:
        """Whether some potential is fixed (else the solver grounds x = 0)."""
        return any(v is not None for v in self.potential.values()) or any(
            p is not None for _, _, p in self.sheets
        )
